"""Where a gateway process keeps its state: the queue, the session store, the web chat's
transcript, the sent-log, the rate limiters and the spent webhook credentials; in this process
with an embedded SQLite file under DATA_DIR for what must survive a restart (sessions, the
transcript, dedupe keys) by default, in Redis when REDIS_URL is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from config.settings import Settings
from core.limits import MemoryLimits
from core.metrics import Metrics
from core.ports import (
    ClaimStore,
    Limits,
    Queue,
    RateLimiter,
    Relay,
    SenderLimit,
    SentLog,
    SessionStore,
    Transcript,
)
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.redis.claims import RedisClaims
from core.redis.client import connect
from core.redis.limits import RedisLimits
from core.redis.queue import RedisQueue
from core.redis.ratelimit import RedisRateLimiter, RedisSenderLimit
from core.redis.relay import RedisRelay
from core.redis.store import RedisSentLog, RedisStore
from core.redis.transcript import RedisTranscript
from core.senderlimit import MemorySenderLimit
from core.sqlite import sessions as sqlite_sessions
from core.sqlite import transcript as sqlite_transcript
from core.sqlite.db import Database
from core.sqlite.keys import SqliteKeys
from core.sqlite.sessions import SqliteSessionStore
from core.sqlite.transcript import SqliteTranscript
from core.store import MemorySentLog

SENDER_LIMIT = 20
SENDER_WINDOW = 60.0
"""Inbound flood control: more than 20 messages from one sender within a minute are not all
answered (the first over gets "slow down", the rest are dropped)."""


@dataclass
class Storage:
    """The stores one process uses, built together so they share one Redis connection (or one
    SQLite file); `closers` close what they share, after the queue and the session store."""

    queue: Queue
    store: SessionStore
    sent: SentLog
    limiter: RateLimiter
    claims: ClaimStore
    """Spent webhook credentials, shared by every process (see `core.channel.Claim`)."""
    durable: bool
    """True when the queue outlives the process (Redis): separate worker processes can share it."""
    senders: SenderLimit | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    limits: Limits = field(default_factory=MemoryLimits)
    """Abuse limits of the web chat (sessions and messages per client address)."""
    transcript: Transcript | None = None
    """The web chat's messages both ways, shown again after a reload."""


KEYS_FILE = "gateway-keys.sqlite3"
SPILL_FILE = "queue-spill.jsonl"
"""Events not handled at the last shutdown (the embedded queue's spill)."""
STATE_FILE = "gateway-state.sqlite3"
"""The embedded default's sessions and web chat transcripts (no REDIS_URL)."""
STATE_SCHEMA = sqlite_sessions.SCHEMA + sqlite_transcript.SCHEMA


def build_storage(settings: Settings, metrics: Metrics | None = None) -> Storage:
    if settings.redis_url is not None:
        return _redis(settings, settings.redis_url.get_secret_value(), metrics)
    # The dedupe keys and the spent tokens must survive a restart (a redelivery or a replay
    # after it is still one); the file is opened when the queue starts.
    keys = SqliteKeys(settings.data_dir / KEYS_FILE)
    # Conversations too: a customer halfway through a flow carries on after a restart, and a
    # reloaded web chat page shows what was said.
    state = Database(settings.data_dir / STATE_FILE, STATE_SCHEMA)
    return Storage(
        queue=MemoryQueue(
            dedupe_ttl=settings.dedupe_ttl,
            spill_path=settings.data_dir / SPILL_FILE,
            journal=keys,
        ),
        store=SqliteSessionStore(state, ttl=settings.session_ttl),
        sent=MemorySentLog(ttl=settings.dedupe_ttl),
        limiter=MemoryRateLimiter(),
        claims=keys,
        durable=False,
        senders=MemorySenderLimit(limit=SENDER_LIMIT, window=SENDER_WINDOW),
        closers=[keys.close],
        transcript=SqliteTranscript(state, ttl=settings.session_ttl),
    )


def _redis(settings: Settings, url: str, metrics: Metrics | None) -> Storage:
    redis = connect(url)
    prefix = settings.redis_prefix
    return Storage(
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
        claims=RedisClaims(redis, prefix=prefix),
        durable=True,
        senders=RedisSenderLimit(redis, limit=SENDER_LIMIT, window=SENDER_WINDOW, prefix=prefix),
        closers=[redis.aclose],
        limits=RedisLimits(redis, prefix=prefix),
        transcript=RedisTranscript(redis, prefix=prefix, ttl=settings.session_ttl),
    )


def build_limits(settings: Settings) -> Limits:
    """Abuse limits of their own (closed by their user): shared through Redis when it is
    configured, else in this process."""
    if settings.redis_url is None:
        return MemoryLimits()
    redis = connect(settings.redis_url.get_secret_value())
    return RedisLimits(redis, prefix=settings.redis_prefix, owned=True)


def build_relay(settings: Settings) -> Relay | None:
    """The web chat's relay between processes: None in one process (in memory)."""
    if settings.redis_url is None:
        return None
    return RedisRelay(connect(settings.redis_url.get_secret_value()), prefix=settings.redis_prefix)
