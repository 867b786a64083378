"""The real processes with the real brain: `chat` scripted on stdin, `serve` answering the web
chat, and SIGTERM keeping what was queued for the next start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(model_dir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "DATA_DIR": str(data_dir),
        "LOG_FORMAT": "json",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def test_chat_reads_stdin_and_answers_through_the_pipeline(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "chat"],
        input="hi\nwhere is my order\nA1B2C3\n",
        cwd=ROOT,
        env=env_for(trained_model_dir, tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    bot = [line for line in out.stdout.splitlines() if line.startswith("bot>")]
    assert len(bot) >= 3, out.stdout
    assert "order number" in out.stdout.lower()
    after = out.stdout.lower().split("order number", 1)[1]
    assert "a1b2c3" in after and "shipped" in after


@contextmanager
def serve(env: dict[str, str], port: int, *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


async def wait_ready(port: int, proc: subprocess.Popen[str]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            assert proc.poll() is None, "serve exited early"
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("serve never became ready")


async def frames(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    """The next `n` frames, past typing notices."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        frame = await asyncio.wait_for(ws.receive_json(), 30)
        if not frame.get("typing"):
            out.append(frame)
    return out


async def test_serve_answers_and_sigterm_keeps_the_queue(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = env_for(trained_model_dir, tmp_path)
    url = f"ws://127.0.0.1:{port}/chat/ws"

    # 1. No worker: the message is queued and not answered; SIGTERM keeps it on disk.
    with serve(env, port, "--no-worker") as proc:
        await wait_ready(port, proc)
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            [hello] = await frames(ws, 1)
            token = hello["session"]
            await ws.send_json({"text": "where is my order"})
            # SIGTERM once the message is queued (the server counts it then), not after a guess.
            for _ in range(300):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    if 'gateway_messages_in_total{channel="webchat"} 1.0' in await r.text():
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the message was never queued")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        _, err = proc.communicate()
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "queue.spilled" in events and events[-1] == "gateway.stopped", events[-5:]
    spilled = (tmp_path / "queue-spill.jsonl").read_text().splitlines()
    assert len(spilled) == 1 and "where is my order" in spilled[0]

    # 2. Started again with its worker: the kept message is answered, the reply waits for the
    #    visitor's socket, and the conversation goes on (its token, signed with the key kept
    #    in DATA_DIR, is still good after the restart).
    with serve(env, port) as proc:
        await wait_ready(port, proc)
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{url}?session={token}") as ws:
                [hello] = await frames(ws, 1)
                assert hello["session"] == token
                # The answer is in the conversation the page is sent, or comes right after
                # it when the turn was still running.
                said = [e for e in hello["history"] if e["from"] == "bot"]
                [reply] = said or await frames(ws, 1)
                assert hello["history"][0]["text"] == "where is my order"
                assert "order number" in reply["text"].lower()
                await ws.send_json({"text": "A1B2C3"})
                [answer] = await frames(ws, 1)
                assert "A1B2C3" in answer["text"] and "shipped" in answer["text"]
                # The flow completed: "Did that help?" follows, once the turn has sent it
                [asked] = await frames(ws, 1)
                assert "help" in asked["text"].lower()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                metrics = await r.text()
        assert 'gateway_messages_in_total{channel="webchat"} 1.0' in metrics
        # The two answers, and "Did that help?" after the order status flow completed
        assert 'gateway_messages_out_total{channel="webchat"} 3.0' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not (tmp_path / "queue-spill.jsonl").exists()
