"""The application's connection handling: a connection that sends no whole request (idle after
a keep-alive answer, or headers trickled in) is closed after IDLE_TIMEOUT."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support._raw_http import closed
from tests.support.doubles import EchoDialogue, KeywordNlu


async def test_an_idle_keep_alive_connection_is_closed(gateway_factory: Any) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False, idle_timeout=0.5
    ) as (client, _s):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"HTTP/1.1 200")
            answered = time.monotonic()
            assert await asyncio.wait_for(closed(reader), 3)
            idle = time.monotonic() - answered
        finally:
            writer.close()
        assert 0.4 <= idle < 2.0, f"closed after {idle:.2f} s idle"


async def test_headers_trickled_in_are_cut_off(gateway_factory: Any) -> None:
    """A slowloris: one header line every 0.1 s, never the end of the headers."""
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False, idle_timeout=0.5
    ) as (client, _s):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)

        async def trickle() -> None:
            writer.write(b"POST /webhooks/test HTTP/1.1\r\nHost: gateway\r\n")
            for i in range(100):
                writer.write(b"X-Slow-%d: 1\r\n" % i)
                await asyncio.sleep(0.1)

        start = time.monotonic()
        slow = asyncio.create_task(trickle())
        try:
            assert await asyncio.wait_for(closed(reader), 3)
        finally:
            slow.cancel()
            writer.close()
        held = time.monotonic() - start
        assert held < 2.0, f"held {held:.2f} s"
