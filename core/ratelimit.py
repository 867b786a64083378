"""Spacing of sends to one chat, as platforms demand (Telegram: about one message a second)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class RateLimiter(Protocol):
    async def wait(self, key: str, interval: float) -> None:
        """Return once a message to `key` may go, at least `interval` seconds after the last."""
        ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._next: dict[str, float] = {}

    async def wait(self, key: str, interval: float) -> None:
        if interval <= 0:
            return
        now = time.monotonic()
        slot = max(now, self._next.get(key, 0.0))
        self._next[key] = slot + interval
        if slot > now:
            await asyncio.sleep(slot - now)
