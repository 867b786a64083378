"""Where sessions live between turns, and the log that makes sending a reply idempotent."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from core.queue import TtlSet
from core.session import SESSION_FORMAT, Session


class SessionStore(Protocol):
    """`load` returns None for an unknown, expired or old-format session; `save` is atomic."""

    async def load(self, key: str) -> Session | None: ...

    async def save(self, session: Session) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class SentLog(Protocol):
    """Which replies (by turn and index) went out already, so a retried turn sends none twice."""

    async def seen(self, key: str) -> bool: ...

    async def mark(self, key: str) -> None: ...


class ClaimStore(Protocol):
    """Spent one-time credentials (`core.channel.Claim`), shared by every process that takes
    webhooks: `core.sqlite.keys.SqliteKeys` in the embedded default, `core.redis.claims
    .RedisClaims` with Redis. The gateway's webhook route is the one user."""

    async def claim(self, key: str, value: str, ttl: float, retry_for: float) -> bool:
        """True when `key` was free (now held with `value` for `ttl` s), or is held with this
        same `value` since less than `retry_for` s (the platform retrying: the queue's dedupe
        still knows the event); False when another value holds it, or the same one for longer
        (a replay the dedupe has forgotten). `StoreUnavailable` on an outage."""
        ...


class Transcript(Protocol):
    """What a conversation's page showed, both ways, so the web chat can show it again after a
    reload and catch up after a reconnect: `core.sqlite.transcript.SqliteTranscript` in the
    embedded default, `core.redis.transcript.RedisTranscript` with Redis. Entries are small
    JSON objects; each gets a number larger than any given before (`seq`), so a page asks for
    what came after the last one it has. A conversation's entries expire with its session."""

    async def add(self, conversation: str, entry: dict[str, Any]) -> int:
        """Store `entry`; its number. `StoreUnavailable` on an outage."""
        ...

    async def since(
        self, conversation: str, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest `limit` entries numbered above `after`, oldest first, each with `seq`."""
        ...

    async def close(self) -> None: ...


SWEEP_EVERY = 30.0
"""Seconds between two sweeps of expired sessions at most (less when SESSION_TTL is shorter)."""
SWEEP_BATCH = 5_000
"""Expired sessions dropped by one sweep step: the loop is given back between steps."""


class MemoryStore:
    """Sessions in a dict, forgotten after `ttl` seconds idle. Stored as JSON so that what works
    here works with Redis too (no shared mutable objects between turns).

    A save moves its session to the end, so with one `ttl` for all the dict stays in order of
    expiry and expired sessions are taken from the front: a couple on every save, the rest by a
    timer in bounded steps. Memory comes back after `ttl` whether or not a conversation is heard
    from again (before, only loading an expired session dropped it)."""

    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float] = time.time,
        *,
        sweep_every: float | None = None,
    ):
        self._ttl = ttl
        self._clock = clock
        self._sweep_every = min(ttl, SWEEP_EVERY) if sweep_every is None else sweep_every
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._peak = 0
        self._timer: asyncio.Handle | None = None

    async def load(self, key: str) -> Session | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, blob = item
        if expires <= self._clock():
            del self._data[key]
            return None
        session = Session.model_validate_json(blob)
        return session if session.format == SESSION_FORMAT else None

    async def save(self, session: Session) -> None:
        now = self._clock()
        data = self._data
        data[session.key] = (now + self._ttl, session.model_dump_json())
        data.move_to_end(session.key)
        self._sweep(now, 2)
        self._peak = max(self._peak, len(data))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._sweep_every, self._tick)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __len__(self) -> int:
        return len(self._data)

    def _sweep(self, now: float, limit: int) -> bool:
        """Drop up to `limit` expired sessions; True when no expired one is left."""
        data = self._data
        for _ in range(limit):
            if not data:
                return True
            key = next(iter(data))  # an OrderedDict's first key: no scan past deleted slots
            if data[key][0] > now:
                return True
            del data[key]
        return False

    def _tick(self) -> None:
        done = self._sweep(self._clock(), SWEEP_BATCH)
        data = self._data
        if done and self._peak > 1024 and len(data) * 4 < self._peak:
            # A dict keeps the table of its largest size; a copy gives back what the drop
            # from the peak left unused.
            self._data = OrderedDict(data)
            self._peak = len(data)
        loop = asyncio.get_running_loop()
        if not done:
            self._timer = loop.call_soon(self._tick)
        elif data:
            self._timer = loop.call_later(self._sweep_every, self._tick)
        else:
            self._timer = None  # nothing to watch; the next save starts the timer again


class MemorySentLog:
    def __init__(self, ttl: float = 86400.0):
        self._keys = TtlSet(ttl)

    async def seen(self, key: str) -> bool:
        return key in self._keys

    async def mark(self, key: str) -> None:
        self._keys.add(key)
