"""Sending replies: to the right adapter, spaced per chat, retried as the platform says, and
never twice for the same (turn, index)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from core.channel import STEPS_DONE
from core.errors import ChannelSendError, RetryAfter, SendRefused
from core.metrics import Metrics
from core.models import Inbound, Outbound
from core.ports import Channel, RateLimiter, SentLog

log = structlog.get_logger(__name__)


class Outbox:
    """Sends every reply (the turn runner's, an apology, a slow-down notice) through the adapter
    of its channel: spaced per chat, retried as the error's type says, and never twice under one
    idempotency key. One per process, built by `gateway/`."""

    def __init__(
        self,
        channels: Mapping[str, Channel],
        sent: SentLog,
        limiter: RateLimiter,
        metrics: Metrics,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 60.0,
    ):
        self._channels = channels
        self._sent = sent
        self._limiter = limiter
        self._metrics = metrics
        self._attempts = attempts
        self._backoff = backoff
        self._max_wait = max_wait

    def channel(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise SendRefused(f"no adapter for channel {name!r}") from None

    async def before_turn(self, inbound: Inbound) -> None:
        """Best effort: a failing typing indicator must not fail the turn."""
        try:
            await self.channel(inbound.channel).before_turn(inbound)
        except Exception as exc:  # noqa: BLE001 - logged, the turn goes on
            log.warning("outbox.before_turn_failed", error=str(exc))

    async def deliver(self, key: str, msg: Outbound) -> bool:
        """Send `msg` once under idempotency `key`. False when it had gone out already."""
        if await self._sent.seen(key):
            log.info("outbox.already_sent", reply=key)
            return False
        channel = self.channel(msg.channel)
        interval = channel.capabilities.per_chat_interval
        for attempt in range(1, self._attempts + 1):
            await self._limiter.wait(msg.conversation.key, interval)
            try:
                await channel.send(msg)
            except SendRefused:
                self._metrics.errors.labels(stage="send").inc()
                raise
            except ChannelSendError as exc:  # RetryAfter, ChannelUnreachable: worth another try
                self._metrics.errors.labels(stage="send").inc()
                if attempt == self._attempts:
                    raise
                if exc.steps_done:  # the next try resumes after what went out
                    msg = msg.model_copy(
                        update={"meta": {**msg.meta, STEPS_DONE: str(exc.steps_done)}}
                    )
                if isinstance(exc, RetryAfter):
                    wait = min(exc.retry_after, self._max_wait)
                else:
                    wait = min(self._backoff * 2 ** (attempt - 1), self._max_wait)
                log.warning("outbox.retry", attempt=attempt, wait_s=wait, error=str(exc))
                await asyncio.sleep(wait)
            else:
                await self._sent.mark(key)
                self._metrics.messages_out.labels(channel=msg.channel).inc()
                return True
        raise AssertionError("unreachable")  # pragma: no cover
