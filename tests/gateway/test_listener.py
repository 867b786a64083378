"""The listening socket of `serve`: connections capped per client address and in all, so slow
clients holding connections cannot take the process's file descriptors, and /healthz answers
as fast as ever while they try."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from config.settings import load_settings
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.listener import ConnectionLimit, GuardedSite, connection_limit
from tests.support._raw_http import closed, post_headers
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel


@asynccontextmanager
async def guarded(tmp_path: Path, limit: ConnectionLimit, **settings: Any) -> AsyncIterator[int]:
    """The gateway app served as `serve` serves it; yields the port."""
    services = build_gateway(
        load_settings(data_dir=tmp_path, **settings),
        "serve",
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        with_worker=False,
        channels={"test": RecordingChannel()},
    )
    runner = web.AppRunner(create_app(services), access_log=None)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, limit)
    await site.start()
    try:
        yield site.port
    finally:
        await runner.cleanup()


async def healthz(port: int, source: str) -> tuple[int, float]:
    """(status, seconds) of one GET /healthz on a new connection from `source`."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 5)
        await reader.read()
    finally:
        writer.close()
    return int(line.split()[1]) if line else 0, time.perf_counter() - start


async def until(check: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def slow_clients(port: int, n: int, source: str = "127.0.0.1") -> list[Any]:
    """`n` connections that sent a webhook's headers and one byte of its 1000-byte body."""
    conns = []
    for _ in range(n):
        reader, writer = await post_headers(
            "127.0.0.1", port, "/webhooks/test", {}, 1000, source=source
        )
        writer.write(b"{")
        conns.append((reader, writer))
    return conns


async def test_one_client_gets_its_share_and_the_next_is_refused_at_once(tmp_path: Path) -> None:
    limit = ConnectionLimit(per_client=20, total=10_000)
    async with guarded(tmp_path, limit) as port:
        held = await slow_clients(port, 20)
        await until(lambda: limit.count == 20, "the 20 connections were admitted")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        line = await asyncio.wait_for(reader.readline(), 2)
        assert line.startswith(b"HTTP/1.1 429"), line
        assert await asyncio.wait_for(closed(reader), 2)
        writer.close()
        # Another address is not held to the first one's share.
        assert (await healthz(port, "127.0.0.2"))[0] == 200
        # A connection that closes gives its place back, and the table forgets the client.
        held[0][1].close()
        await until(lambda: limit.count == 19, "the closed connection was released")
        assert (await healthz(port, "127.0.0.1"))[0] == 200
        for _, w in held[1:]:
            w.close()
        await until(lambda: limit.count == 0, "every connection was released")
        assert limit.open == {} and limit.refused == 1


async def test_connections_in_all_are_capped_below_the_file_limit(tmp_path: Path) -> None:
    limit = ConnectionLimit(per_client=0, total=8)
    async with guarded(tmp_path, limit) as port:
        held = [c for i in range(8) for c in await slow_clients(port, 1, f"127.0.0.{i + 2}")]
        await until(lambda: limit.count == 8, "eight admitted")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"HTTP/1.1 503")
        writer.close()
        for _, w in held:
            w.close()


async def test_a_trusted_proxy_is_not_held_to_one_clients_share(tmp_path: Path) -> None:
    limit = ConnectionLimit(per_client=3, total=10_000, exempt=["127.0.0.9/32"])
    async with guarded(tmp_path, limit) as port:
        held = await slow_clients(port, 6, source="127.0.0.9")
        await until(lambda: limit.count == 6, "the proxy's six connections were admitted")
        assert limit.refused == 0
        for _, w in held:
            w.close()


def test_the_default_total_leaves_descriptors_for_everything_else() -> None:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = connection_limit(load_settings())
    assert limit.per_client == 100
    if 0 < soft < 1 << 20:
        assert limit.total == max(64, soft - 128)
    assert connection_limit(load_settings(max_connections=50)).total == 50


@pytest.mark.slow
async def test_healthz_stays_fast_while_slow_clients_hold_connections(tmp_path: Path) -> None:
    """300 connections trickling webhook bodies (100 from one address, the rest refused, and
    100 each from two more): /healthz from another address answers about as fast as on an idle
    listener (the same run's baseline, so a busy machine does not decide it), and never waits
    anywhere near the 30 s a request queued behind the slow bodies would."""
    limit = ConnectionLimit(per_client=100, total=10_000)
    async with guarded(tmp_path, limit, body_read_timeout=30.0) as port:
        idle = [(await healthz(port, "127.0.0.2"))[1] for _ in range(40)]
        held: list[Any] = []
        for source in ("127.0.0.1", "127.0.0.3", "127.0.0.4"):
            held += await slow_clients(port, 100, source)
        extra = await slow_clients(port, 50)  # over the first address's share
        await until(lambda: limit.count == 300, "300 slow clients admitted")
        await until(lambda: limit.refused == 50, "the 50 over the share refused")
        stop = asyncio.Event()

        async def trickle() -> None:
            while not stop.is_set():
                for _, w in held:
                    if not w.is_closing():
                        w.write(b" ")
                await asyncio.sleep(0.05)

        trickler = asyncio.create_task(trickle())
        try:
            times = []
            for _ in range(40):
                status, took = await healthz(port, "127.0.0.2")
                assert status == 200
                times.append(took)
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await trickler
        for _, w in held + extra:
            w.close()
        base = statistics.median(idle)
        assert statistics.median(times) < 3 * base + 0.01, (base, times)
        assert max(times) < 1.0, f"slowest /healthz {max(times) * 1000:.1f} ms"


async def test_an_aiohttp_client_reads_the_refusal(tmp_path: Path) -> None:
    limit = ConnectionLimit(per_client=1, total=10_000)
    async with guarded(tmp_path, limit) as port:
        held = await slow_clients(port, 1)
        await until(lambda: limit.count == 1, "one admitted")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as r,
        ):
            assert r.status == 429 and "too many connections" in await r.text()
        held[0][1].close()


def test_the_refusal_is_written_on_uvloop_too(tmp_path: Path) -> None:
    """`serve` runs on uvloop (EVENT_LOOP), whose transports are not asyncio's classes."""
    import uvloop

    from gateway.commands._common import run_loop

    async def refused_line() -> bytes:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        limit = ConnectionLimit(per_client=1, total=10_000)
        async with guarded(tmp_path, limit) as port:
            held = await slow_clients(port, 1)
            await until(lambda: limit.count == 1, "one admitted")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            line = await asyncio.wait_for(reader.readline(), 2)
            writer.close()
            held[0][1].close()
            return line

    assert run_loop("uvloop", asyncio.wait_for(refused_line(), 10)).startswith(b"HTTP/1.1 429")
