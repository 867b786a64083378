"""Queue, session store, sent-log and rate limiter: in memory by default, Redis when REDIS_URL
is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from config.settings import Settings
from core.metrics import Metrics
from core.queue import MemoryQueue, Queue
from core.ratelimit import MemoryRateLimiter, RateLimiter
from core.redis.client import connect
from core.redis.queue import RedisQueue
from core.redis.ratelimit import RedisRateLimiter, RedisSenderLimit
from core.redis.relay import RedisRelay
from core.redis.store import RedisSentLog, RedisStore
from core.relay import Relay
from core.senderlimit import MemorySenderLimit, SenderLimit
from core.store import MemorySentLog, MemoryStore, SentLog, SessionStore

SENDER_LIMIT = 20
SENDER_WINDOW = 60.0
"""Inbound flood control: more than 20 messages from one sender within a minute are not all
answered (the first over gets "slow down", the rest are dropped)."""


@dataclass
class Backends:
    queue: Queue
    store: SessionStore
    sent: SentLog
    limiter: RateLimiter
    durable: bool
    """True when the queue outlives the process (Redis): separate worker processes can share it."""
    senders: SenderLimit | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        await self.queue.close()
        await self.store.close()
        for close in self.closers:
            await close()


def build_backends(settings: Settings, metrics: Metrics | None = None) -> Backends:
    if settings.redis_url is not None:
        return _redis(settings, settings.redis_url.get_secret_value(), metrics)
    return Backends(
        queue=MemoryQueue(
            dedupe_ttl=settings.dedupe_ttl, spill_path=settings.data_dir / "queue-spill.jsonl"
        ),
        store=MemoryStore(ttl=settings.session_ttl),
        sent=MemorySentLog(ttl=settings.dedupe_ttl),
        limiter=MemoryRateLimiter(),
        durable=False,
        senders=MemorySenderLimit(limit=SENDER_LIMIT, window=SENDER_WINDOW),
    )


def _redis(settings: Settings, url: str, metrics: Metrics | None) -> Backends:
    redis = connect(url)
    prefix = settings.redis_prefix
    return Backends(
        queue=RedisQueue(
            redis,
            prefix=prefix,
            claim_idle_ms=settings.claim_idle_ms,
            dedupe_ttl=settings.dedupe_ttl,
            max_deliveries=settings.max_attempts + 2,
            metrics=metrics,
        ),
        store=RedisStore(redis, prefix=prefix, ttl=settings.session_ttl),
        sent=RedisSentLog(redis, prefix=prefix, ttl=settings.dedupe_ttl),
        limiter=RedisRateLimiter(redis, prefix=prefix),
        durable=True,
        senders=RedisSenderLimit(redis, limit=SENDER_LIMIT, window=SENDER_WINDOW, prefix=prefix),
        closers=[redis.aclose],
    )


def build_relay(settings: Settings) -> Relay | None:
    """The web chat's relay between processes: None in one process (in memory)."""
    if settings.redis_url is None:
        return None
    return RedisRelay(connect(settings.redis_url.get_secret_value()), prefix=settings.redis_prefix)
