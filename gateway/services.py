"""Everything one gateway process runs, as `gateway.build.build_gateway` made it, and the typed
key under which the web app keeps it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from adapters.webchat import WebChatChannel
from config.settings import Settings
from core.engine import Engine
from core.metrics import Metrics
from core.outbox import Outbox
from core.ports import Channel, Dialogue, IntentParser
from gateway.desk import Desk
from gateway.lifecycle import Part, run_parts
from gateway.storage import Storage

log = structlog.get_logger(__name__)


@dataclass
class Services:
    """One process's parts, built but not started: the web handlers, the commands and the
    tests reach the storage, channels, outbox and engine through it. `running()` starts `parts`
    in order and stops them in reverse; which parts a role runs is decided in `gateway.build`."""

    settings: Settings
    metrics: Metrics
    storage: Storage
    channels: dict[str, Channel]
    outbox: Outbox
    nlu: IntentParser
    dialogue: Dialogue
    engine: Engine | None
    """None when this process only takes webhooks and separate workers answer."""
    parts: tuple[Part, ...] = ()
    ingresses: list[object] = field(default_factory=list)
    """The ingress loops (Socket Mode, long polling, IMAP) among `parts`, for health and tests."""
    desk: Desk | None = None
    """The support team's side (conversation store, agents, console news); None: no desk."""

    @property
    def webchat(self) -> WebChatChannel | None:
        ch = self.channels.get(WebChatChannel.name)
        return ch if isinstance(ch, WebChatChannel) else None

    @property
    def part_names(self) -> list[str]:
        return [p.name for p in self.parts]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Services]:
        """The parts started for the body; on the way out (stop, or a start that failed
        half-way) those that started are stopped, every one even when another fails."""
        async with run_parts(self.parts):
            log.info(
                "gateway.started", channels=sorted(self.channels), worker=self.engine is not None
            )
            yield self
        log.info("gateway.stopped")


SERVICES = web.AppKey("services", Services)
"""Where a web app built by `gateway.app` keeps its process's `Services`."""
