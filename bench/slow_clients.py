"""Slow and idle clients against the gateway as `serve` runs it (its listening site and
connection caps, default settings, the in-memory queue), all on 127.0.0.1:

  wrong secret   a Telegram webhook whose secret header is wrong, its body trickled a byte every
                 0.2 s: when it is answered, when its connection is closed
  slow body      a webhook body trickled the same way: when it is answered (408), when closed
  idle           a keep-alive connection after one answer: when it is closed
  slow crowd     300 connections from one address that send a webhook's headers and one byte of
                 body, then 100 each from two more addresses: how many are held and refused,
                 and `/healthz` from a fourth address meanwhile (40 requests, one at a time)
  frozen Redis   a private redis-server stopped with SIGSTOP: when a webhook gets its 503

    .venv/bin/python -m bench.slow_clients
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import web

from config.settings import load_settings
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.listener import GuardedSite, connection_limit
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.redis_server import RedisServer

TELEGRAM = {
    "telegram_bot_token": "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "telegram_secret_token": "bench-secret",
    "telegram_api_url": "http://127.0.0.1:9/bot",  # nothing listens: sends are not measured
}


async def serve(data_dir: Path, **settings: object) -> tuple[web.AppRunner, int]:
    s = load_settings(data_dir=data_dir, **settings)
    services = build_gateway(
        s, "serve", nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False
    )
    runner = web.AppRunner(create_app(services), access_log=None)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, connection_limit(s))
    await site.start()
    return runner, site.port


async def open_post(port: int, path: str, headers: dict[str, str], source: str = "127.0.0.1"):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    head = [f"POST {path} HTTP/1.1", "Host: gateway", "Content-Length: 100000"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n{").encode())
    return reader, writer


async def trickled(port: int, path: str, headers: dict[str, str]) -> str:
    """`status at Xs, closed at Ys` for a body trickled a byte every 0.2 s (capped at 30 s)."""
    reader, writer = await open_post(port, path, headers)
    start = time.monotonic()

    async def trickle() -> None:
        while not writer.is_closing():
            writer.write(b" ")
            await asyncio.sleep(0.2)

    task = asyncio.create_task(trickle())
    try:
        line = await asyncio.wait_for(reader.readline(), 30)
        answered = time.monotonic() - start
        try:
            while await asyncio.wait_for(reader.read(65536), 30):
                pass
        except ConnectionError:
            pass
        closed = time.monotonic() - start
        return f"{line.split()[1].decode()} at {answered:.3f} s, closed at {closed:.2f} s"
    except TimeoutError:
        return "no answer within 30 s"
    finally:
        task.cancel()
        writer.close()


async def idle(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
    await reader.readline()
    start = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(65536), 60):
            pass
        return f"closed after {time.monotonic() - start:.1f} s idle"
    except TimeoutError:
        return "still open after 60 s"
    finally:
        writer.close()


async def healthz(port: int, source: str) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
    line = await reader.readline()
    await reader.read()
    writer.close()
    assert line.startswith(b"HTTP/1.1 200"), line
    return time.perf_counter() - start


async def crowd(port: int) -> list[str]:
    conns = []
    for source, n in (("127.0.0.1", 300), ("127.0.0.3", 100), ("127.0.0.4", 100)):
        for _ in range(n):
            conns.append(await open_post(port, "/webhooks/telegram", {}, source))
    await asyncio.sleep(0.5)
    refused = 0
    for reader, _ in conns:
        try:
            if (await asyncio.wait_for(reader.readline(), 0.01)).startswith(b"HTTP/1.1 429"):
                refused += 1
        except TimeoutError:
            pass
    times = []
    for _ in range(40):
        times.append(await healthz(port, "127.0.0.2"))
        await asyncio.sleep(0.01)
    for _, writer in conns:
        writer.close()
    ms = sorted(t * 1000 for t in times)
    return [
        f"{len(conns) - refused} held, {refused} refused (429)",
        f"/healthz meanwhile: median {statistics.median(ms):.1f} ms, "
        f"p95 {ms[int(len(ms) * 0.95) - 1]:.1f} ms, max {ms[-1]:.1f} ms",
    ]


async def frozen_redis(data_dir: Path) -> str:
    server = RedisServer(data_dir)
    server.start()
    runner, port = await serve(data_dir, redis_url=server.url, **TELEGRAM)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"update_id": 1, "message": {"message_id": 1, "date": 1, "text": "hi", '
        body += b'"chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": false, '
        body += b'"first_name": "A"}}}'
        head = (
            "POST /webhooks/telegram HTTP/1.1\r\nHost: gateway\r\n"
            "X-Telegram-Bot-Api-Secret-Token: bench-secret\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            writer.write(head.encode() + body)
            line = await asyncio.wait_for(reader.readline(), 30)
            took = time.monotonic() - start
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        writer.close()
        return f"{line.split()[1].decode()} after {took:.2f} s"
    finally:
        await runner.cleanup()
        server.stop()


async def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    runner, port = await serve(data_dir, **TELEGRAM)
    rows = []
    try:
        bad = {"X-Telegram-Bot-Api-Secret-Token": "wrong", "Content-Type": "application/json"}
        rows.append(("wrong secret", await trickled(port, "/webhooks/telegram", bad)))
        good = {**bad, "X-Telegram-Bot-Api-Secret-Token": "bench-secret"}
        rows.append(("slow body", await trickled(port, "/webhooks/telegram", good)))
        rows.append(("idle", await idle(port)))
        for line in await crowd(port):
            rows.append(("slow crowd", line))
    finally:
        await runner.cleanup()
    rows.append(("frozen Redis", await frozen_redis(data_dir)))
    print("| attack | result |\n|---|---|")
    for name, result in rows:
        print(f"| {name} | {result} |")


if __name__ == "__main__":
    asyncio.run(main())
