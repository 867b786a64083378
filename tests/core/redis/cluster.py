"""Running real gateway processes (harness `serve` and `worker`) against a Redis, a recorder of
what they send, and a platform that signs webhooks and retries them like the real ones do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from core.redis.client import connect
from tests.support.doubles import SIGNATURE, sign
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[3]
SECRET = "probe-secret"


@dataclass
class Sent:
    chat: str
    text: str
    pid: int
    at: float


class Recorder:
    """The fake platform API the probe channel sends to."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    async def _send(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.sent.append(Sent(data["chat"], data["text"], data["pid"], time.monotonic()))
        self.arrived.set()
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def texts(self, chat: str) -> list[str]:
        return [s.text for s in self.sent if s.chat == chat]


@dataclass
class Proc:
    role: str
    popen: subprocess.Popen[bytes]
    port: int | None
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)


@dataclass
class Cluster:
    """`serve` and `worker` processes of the harness, sharing one Redis (or none: in memory)."""

    redis_url: str | None
    recorder: Recorder
    logdir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    brain: str = "double"

    def _env(self, port: int | None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("REDIS_", "PORT", "CLAIM_", "GATEWAY_"))
        }
        env.update(
            PYTHONPATH=str(ROOT),
            RECORD_URL=self.recorder.url,
            PROBE_SECRET=SECRET,
            LOG_LEVEL="warning",
            LOG_FORMAT="json",
            DATA_DIR=str(self.logdir / "data"),
            CLAIM_IDLE_MS="1500",
            SHUTDOWN_TIMEOUT="5",
        )
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        if port:
            env["PORT"] = str(port)
        env.update(self.env)
        return env

    def spawn(self, role: str, *extra: str) -> Proc:
        port = free_port() if role == "serve" else None
        log = self.logdir / f"{role}-{len(self.procs)}.log"
        cmd = [
            sys.executable,
            "-m",
            "tests.core.redis.harness",
            role,
            "--brain",
            self.brain,
            *extra,
        ]
        with log.open("wb") as fh:
            popen = subprocess.Popen(
                cmd, cwd=ROOT, env=self._env(port), stdout=fh, stderr=subprocess.STDOUT
            )
        proc = Proc(role, popen, port, log)
        self.procs.append(proc)
        return proc

    async def wait_ready(self, timeout: float = 180.0) -> None:
        """Every serve answers /healthz and every worker holds partitions (or is registered)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            for p in self.procs:
                if p.role != "serve":
                    continue
                while True:
                    self.check_alive()
                    try:
                        async with http.get(f"http://127.0.0.1:{p.port}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"serve on {p.port} not up; see {p.log}")
                    await asyncio.sleep(0.1)

    def check_alive(self) -> None:
        for p in self.procs:
            code = p.popen.poll()
            if code is not None and code != -signal.SIGKILL:
                raise RuntimeError(f"{p.role} {p.pid} exited {code}: {p.log.read_text()[-3000:]}")

    def stop(self) -> None:
        for p in self.procs:
            if p.popen.poll() is None:
                p.popen.terminate()
        for p in self.procs:
            try:
                p.popen.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    def serves(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "serve"]


def payload(event_id: str, chat: str, text: str) -> bytes:
    return json.dumps({"id": event_id, "chat": chat, "text": text}).encode()


async def post(
    http: aiohttp.ClientSession, port: int, body: bytes, *, secret: str = SECRET
) -> tuple[int, float]:
    """One webhook delivery: (status, seconds to the answer); status 0 when unreachable."""
    t0 = time.perf_counter()
    try:
        async with http.post(
            f"http://127.0.0.1:{port}/webhooks/probe",
            data=body,
            headers={SIGNATURE: sign(secret.encode(), body), "content-type": "application/json"},
        ) as r:
            await r.read()
            return r.status, time.perf_counter() - t0
    except (aiohttp.ClientError, TimeoutError):
        return 0, time.perf_counter() - t0


async def deliver(
    http: aiohttp.ClientSession,
    port: int,
    body: bytes,
    statuses: list[int] | None = None,
    within: float = 60.0,
) -> None:
    """Like a platform: retry with back-off until the webhook answers 200."""
    deadline = time.monotonic() + within
    delay = 0.1
    while True:
        status, _ = await post(http, port, body)
        if statuses is not None:
            statuses.append(status)
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"webhook never accepted (last status {status})")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def until(cond: Callable[[], Any], timeout: float, what: str, cluster: Cluster) -> None:
    """Poll `cond` until true; fail with `what` (and a dead process's log) after `timeout`."""
    deadline = time.monotonic() + timeout
    while not cond():
        cluster.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def drained(
    cluster: Cluster, timeout: float = 60.0, partitions: int = 16, prefix: str = "gateway"
) -> None:
    """Until every queued entry has been acknowledged. `ack` deletes the entry and a turn's
    replies go out before it, so once the streams are empty no turn is left to run or to finish
    and no reply is still to come: the barrier a "nothing more was sent" check waits on, instead
    of a clock. Duplicates never reach the streams (the dedupe is in `put`)."""
    assert cluster.redis_url is not None
    r = connect(cluster.redis_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            pipe = r.pipeline(transaction=False)
            for i in range(partitions):
                pipe.xlen(f"{prefix}:q:{i}")
            left = sum(await pipe.execute())
            if not left:
                return
            cluster.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{left} entries still queued after {timeout} s")
            await asyncio.sleep(0.05)
    finally:
        await r.aclose()


async def lease_owners(redis_url: str, partitions: int = 16, prefix: str = "gateway") -> set[int]:
    """Pids of the workers holding partition leases (consumer names end in `-<pid>-<random>`)."""
    r = connect(redis_url)
    try:
        vals = await r.mget([f"{prefix}:lease:{i}" for i in range(partitions)])
    finally:
        await r.aclose()
    return {int(v.decode().rsplit("-", 2)[1]) for v in vals if v}


async def wait_workers(cluster: Cluster, timeout: float = 60.0) -> None:
    """Until every worker of `cluster` holds partitions, so the load is shared from the start."""
    assert cluster.redis_url is not None
    want = {p.pid for p in cluster.procs if p.role == "worker"}
    await cluster.wait_ready(timeout)
    deadline = time.monotonic() + timeout
    while await lease_owners(cluster.redis_url) != want:
        cluster.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError("the workers never shared the partitions")
        await asyncio.sleep(0.1)
