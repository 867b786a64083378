"""Spacing of sends to one chat, as platforms demand (Telegram: about one message a second)."""

from __future__ import annotations

import asyncio
import time


class MemoryRateLimiter:
    """`RateLimiter` for one process: the next free slot per chat, in memory."""

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
