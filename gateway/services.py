"""Everything one gateway process runs, built from the settings, started and stopped in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from adapters.webchat import WebChatChannel
from config.settings import Settings
from core.channel import Channel
from core.engine import Engine, EngineSettings
from core.metrics import Metrics
from core.outbox import Outbox
from core.turn import Dialogue, IntentParser
from gateway.backends import Backends, build_backends
from gateway.channels import build_channels

log = structlog.get_logger(__name__)

Hook = Callable[[], Awaitable[None]]


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    backends: Backends
    channels: dict[str, Channel]
    outbox: Outbox
    nlu: IntentParser
    dialogue: Dialogue
    engine: Engine | None
    """None when this process only takes webhooks and separate workers answer."""
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)

    @property
    def webchat(self) -> WebChatChannel | None:
        ch = self.channels.get(WebChatChannel.name)
        return ch if isinstance(ch, WebChatChannel) else None

    async def start(self) -> None:
        await self.backends.queue.start()
        for ch in self.channels.values():
            await ch.start()
        for hook in self.on_start:
            await hook()
        if self.engine is not None:
            await self.engine.start()
        log.info("gateway.started", channels=sorted(self.channels), worker=self.engine is not None)

    async def stop(self) -> None:
        """In-flight turns finish, then the queue keeps (or spills) what is left."""
        if self.engine is not None:
            await self.engine.stop(self.settings.shutdown_timeout)
        for hook in reversed(self.on_stop):
            await hook()
        for ch in self.channels.values():
            await ch.close()
        await self.backends.close()
        log.info("gateway.stopped")


def wants_worker(settings: Settings, durable: bool) -> bool:
    if settings.embedded_worker == "auto":
        return not durable
    return settings.embedded_worker == "on"


def build_services(
    settings: Settings,
    *,
    nlu: IntentParser,
    dialogue: Dialogue,
    with_worker: bool | None = None,
    extra_channels: dict[str, Channel] | None = None,
    flood_control: bool = True,
) -> Services:
    """`flood_control`: a sender over the limit is told once to slow down and the rest of the
    flood goes unanswered (off for the terminal chat, where stdin may be a long script)."""
    metrics = Metrics()
    backends = build_backends(settings, metrics)
    channels = build_channels(settings)
    channels.update(extra_channels or {})
    chat = channels.get(WebChatChannel.name)
    if isinstance(chat, WebChatChannel):
        chat.transcript = backends.transcript
    outbox = Outbox(
        channels, backends.sent, backends.limiter, metrics, attempts=settings.send_attempts
    )
    run_worker = wants_worker(settings, backends.durable) if with_worker is None else with_worker
    engine = (
        Engine(
            queue=backends.queue,
            store=backends.store,
            nlu=nlu,
            dialogue=dialogue,
            outbox=outbox,
            metrics=metrics,
            settings=EngineSettings(
                concurrency=settings.concurrency,
                prefetch=settings.prefetch,
                max_attempts=settings.max_attempts,
                history_turns=settings.history_turns,
            ),
            senders=backends.senders if flood_control else None,
        )
        if run_worker
        else None
    )
    return Services(settings, metrics, backends, channels, outbox, nlu, dialogue, engine)
