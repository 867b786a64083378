"""A gateway built as `serve` builds it (services, ingress loops, app), on a loopback port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from core.ports import Dialogue, IntentParser
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.services import Services
from tests.support.dovecot import dovecot
from tests.support.fakes import FakePlatform, Sent

__all__ = ["dovecot"]


@dataclass
class Served:
    services: Services
    loops: list[object]

    def count(self, metric: str, channel: str) -> int:
        value = self.services.metrics.registry.get_sample_value(metric, {"channel": channel})
        return int(value or 0)


@asynccontextmanager
async def serving(
    settings: Settings, *, nlu: IntentParser, dialogue: Dialogue
) -> AsyncIterator[Served]:
    services = build_gateway(settings, "serve", nlu=nlu, dialogue=dialogue, with_worker=True)
    loops = services.ingresses
    client = TestClient(TestServer(create_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Served(services, loops)
    finally:
        await client.close()


async def until(check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """`check()`'s first truthy value, polled; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


async def replies(fake: FakePlatform, after: int, found: Callable[[str], bool]) -> list[Sent]:
    """The messages at the platform past the first `after`, once one of them is `found`."""
    return await until(  # type: ignore[no-any-return]
        lambda: (new := fake.sent()[after:]) and any(found(s.text) for s in new) and new,
        what="a matching reply at the platform",
    )
