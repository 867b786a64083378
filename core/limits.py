"""Abuse limits: how often something may happen within a window, and "once per period" claims.
The web chat counts new sessions and messages per client address with them, `integrations/`
counts actions with side effects and handoffs; `core.redis.limits` shares them between
processes."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryLimits:
    """`Limits` in one process's memory. Keys silent for a whole window, and claims that ran
    out, are forgotten as new ones come, so a flood of new addresses cannot grow it for ever."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._windows: dict[float, OrderedDict[str, dict[str, float]]] = {}
        """Per window length, keys least recently counted first; per key, event → when, in
        the order counted."""
        self._claims: dict[float, OrderedDict[str, tuple[float, str]]] = {}
        """Per period, key → (runs out at, owner), in the order claimed (so in expiry order)."""

    async def hit(self, key: str, limit: int, window: float, event: str) -> float:
        if limit <= 0:
            return 0.0
        now = self._clock()
        table = self._windows.setdefault(window, OrderedDict())
        _forget_silent(table, now - window)
        events = table.pop(key, None) or {}
        table[key] = events
        while events:
            first, at = next(iter(events.items()))
            if at > now - window:
                break
            del events[first]
        if event in events:
            return 0.0
        if len(events) >= limit:
            return max(next(iter(events.values())) + window - now, 0.001)
        events[event] = now
        return 0.0

    async def claim(self, key: str, period: float, owner: str) -> float:
        now = self._clock()
        table = self._claims.setdefault(period, OrderedDict())
        while table and next(iter(table.values()))[0] <= now:
            table.popitem(last=False)
        held = table.get(key)
        if held is None:
            table[key] = (now + period, owner)
            return 0.0
        return 0.0 if held[1] == owner else held[0] - now

    async def release(self, key: str, owner: str) -> None:
        for table in self._claims.values():
            held = table.get(key)
            if held is not None and held[1] == owner:
                del table[key]

    async def close(self) -> None:
        return None


def _forget_silent(table: OrderedDict[str, dict[str, float]], cutoff: float) -> None:
    while table:
        events = next(iter(table.values()))
        if events and next(reversed(events.values())) > cutoff:
            return
        table.popitem(last=False)
