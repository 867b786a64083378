"""Where sessions live between turns, and the log that makes sending a reply idempotent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

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


class MemoryStore:
    """Sessions in a dict, forgotten after `ttl` seconds idle. Stored as JSON so that what works
    here works with Redis too (no shared mutable objects between turns)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time):
        self._ttl = ttl
        self._clock = clock
        self._data: dict[str, tuple[float, str]] = {}

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
        self._data[session.key] = (self._clock() + self._ttl, session.model_dump_json())

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._data)


class MemorySentLog:
    def __init__(self, ttl: float = 86400.0):
        self._keys = TtlSet(ttl)

    async def seen(self, key: str) -> bool:
        return key in self._keys

    async def mark(self, key: str) -> None:
        self._keys.add(key)
