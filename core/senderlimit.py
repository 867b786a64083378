"""Inbound flood control: too many messages from one sender in a window are not all answered."""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Verdict(enum.Enum):
    ALLOW = "allow"
    WARN = "warn"
    """The first event over the limit in a window: answer once "slow down", handle no further."""
    DROP = "drop"
    """Further events over the limit: acknowledged and not answered."""


class SenderLimit(Protocol):
    """`hit` counts one event of a sender and says what to do with it. `event_key` makes the
    count idempotent for a redelivered event (the Redis version keys the window by it)."""

    async def hit(self, sender_key: str, event_key: str) -> Verdict: ...


class MemorySenderLimit:
    """A sliding window per sender in one process."""

    def __init__(self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[tuple[float, str]]] = {}
        self._warned: dict[str, float] = {}

    async def hit(self, sender_key: str, event_key: str) -> Verdict:
        now = self._clock()
        hits = self._hits.setdefault(sender_key, deque())
        while hits and hits[0][0] <= now - self.window:
            hits.popleft()
        if all(k != event_key for _, k in hits):
            hits.append((now, event_key))
        if len(hits) <= self.limit:
            return Verdict.ALLOW
        if self._warned.get(sender_key, -1e18) > now - self.window:
            return Verdict.DROP
        self._warned[sender_key] = now
        return Verdict.WARN
