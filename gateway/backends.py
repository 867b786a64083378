"""Queue, session store, sent-log and rate limiter: in memory by default, Redis when REDIS_URL
is set."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from core.queue import MemoryQueue, Queue
from core.ratelimit import MemoryRateLimiter, RateLimiter
from core.store import MemorySentLog, MemoryStore, SentLog, SessionStore


@dataclass
class Backends:
    queue: Queue
    store: SessionStore
    sent: SentLog
    limiter: RateLimiter
    durable: bool
    """True when the queue outlives the process (Redis): separate worker processes can share it."""

    async def close(self) -> None:
        await self.queue.close()
        await self.store.close()


def build_backends(settings: Settings) -> Backends:
    if settings.redis_url is not None:
        raise NotImplementedError("REDIS_URL is set but the Redis backend is not wired yet")
    return Backends(
        queue=MemoryQueue(
            dedupe_ttl=settings.dedupe_ttl, spill_path=settings.data_dir / "queue-spill.jsonl"
        ),
        store=MemoryStore(ttl=settings.session_ttl),
        sent=MemorySentLog(ttl=settings.dedupe_ttl),
        limiter=MemoryRateLimiter(),
        durable=False,
    )
