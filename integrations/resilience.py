"""Keeping a flaky backend from hurting conversations: retries with backoff and jitter, a circuit
breaker per target, and a small answer cache."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import structlog

from core.errors import ActionError

log = structlog.get_logger(__name__)
T = TypeVar("T")


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: a random wait up to base * 2**attempt, so retries of many conversations do
    not hit the backend in step."""
    return rng.uniform(0, min(cap, base * (2**attempt)))


async def with_retries(
    attempt_once: Callable[[], Awaitable[T]],
    *,
    retries: int,
    timeout: float,
    base: float = 0.2,
    cap: float = 2.0,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run with a timeout per attempt; retry only timeouts and errors marked retryable."""
    rng = rng or random.Random()
    for attempt in range(retries + 1):
        try:
            async with asyncio.timeout(timeout):
                return await attempt_once()
        except TimeoutError:
            error = ActionError(f"timed out after {timeout}s", retryable=True)
        except ActionError as exc:
            if not exc.retryable:
                raise
            error = exc
        if attempt < retries:
            delay = backoff_delay(attempt, base, cap, rng)
            log.info("action.retry", attempt=attempt + 1, delay=round(delay, 3), error=str(error))
            await sleep(delay)
    raise error


class CircuitBreaker:
    """Closed: calls pass. After `threshold` failures in a row: open, calls fail at once for
    `reset_after` seconds. Then half-open: one trial call decides."""

    def __init__(
        self,
        threshold: int = 5,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.threshold = threshold
        self.reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.reset_after else "open"

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        state = self.state
        if state == "open" or (state == "half-open" and self._trial):
            raise ActionError("circuit open: the backend failed repeatedly", retryable=False)
        self._trial = state == "half-open"
        try:
            result = await fn()
        except ActionError:
            self._failed()
            raise
        self._failures, self._opened_at, self._trial = 0, None, False
        return result

    def _failed(self) -> None:
        self._failures += 1
        self._trial = False
        if self._opened_at is not None or self._failures >= self.threshold:
            self._opened_at = self._clock()
            log.warning("circuit.open", failures=self._failures)


class TtlCache:
    """Answers kept for `ttl` seconds, bounded in size (oldest dropped first)."""

    def __init__(self, max_items: int = 1024, clock: Callable[[], float] = time.monotonic):
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._max = max_items
        self._clock = clock

    def get(self, key: Hashable) -> tuple[bool, Any]:
        hit = self._data.get(key)
        if hit is None or hit[0] < self._clock():
            self._data.pop(key, None)
            return False, None
        return True, hit[1]

    def put(self, key: Hashable, value: Any, ttl: float) -> None:
        if len(self._data) >= self._max:
            self._data.pop(next(iter(self._data)))
        self._data[key] = (self._clock() + ttl, value)
