"""Waiting between reconnects: doubling up to a ceiling, with jitter, cut short by a stop."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """`await wait()` sleeps the next delay (0.5 s, 1 s, 2 s... up to `ceiling`, each with up
    to a quarter more at random so that processes do not reconnect in step); `reset()` after a
    success. Returns False at once when `stopping` is set."""

    def __init__(self, stopping: asyncio.Event, first: float = 0.5, ceiling: float = 30.0):
        self._stopping = stopping
        self._first = first
        self._ceiling = ceiling
        self._next = first

    def reset(self) -> None:
        self._next = self._first

    async def wait(self, at_least: float = 0.0) -> bool:
        delay = max(at_least, self._next) * (1 + random.random() / 4)
        self._next = min(self._next * 2, self._ceiling)
        return await sleep_unless(self._stopping, delay)


async def sleep_unless(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`; False (at once) when `stopping` is set first."""
    try:
        async with asyncio.timeout(seconds):
            await stopping.wait()
    except TimeoutError:
        return True
    return False
