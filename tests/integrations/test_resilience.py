"""Retries only on 5xx/timeouts with growing jittered waits; a circuit breaker per target."""

from __future__ import annotations

import asyncio
import random

import pytest

from core.errors import ActionError
from integrations.registry import ActionRegistry, CallPolicy
from integrations.resilience import CircuitBreaker, TtlCache, backoff_delay, with_retries


class Flaky:
    def __init__(self, *errors: Exception | None) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        error = self.errors.pop(0) if self.errors else None
        if isinstance(error, TimeoutError):
            await asyncio.sleep(1)
        elif error is not None:
            raise error
        return "ok"


async def test_retries_retryable_errors_and_timeouts_with_backoff() -> None:
    waits: list[float] = []

    async def sleep(d: float) -> None:
        waits.append(d)

    fn = Flaky(ActionError("503", retryable=True), TimeoutError(), None)
    result = await with_retries(
        fn, retries=2, timeout=0.05, base=0.1, rng=random.Random(3), sleep=sleep
    )
    assert result == "ok" and fn.calls == 3
    assert len(waits) == 2 and 0 <= waits[0] <= 0.1 and 0 <= waits[1] <= 0.2


async def test_final_errors_are_not_retried() -> None:
    fn = Flaky(ActionError("404"))
    with pytest.raises(ActionError, match="404"):
        await with_retries(fn, retries=3, timeout=1)
    assert fn.calls == 1


async def test_gives_up_after_the_retries() -> None:
    fn = Flaky(*[ActionError("500", retryable=True)] * 5)
    with pytest.raises(ActionError, match="500"):
        await with_retries(fn, retries=2, timeout=1, base=0.001)
    assert fn.calls == 3


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(0)
    assert all(backoff_delay(10, 0.2, 2.0, rng) <= 2.0 for _ in range(50))
    assert max(backoff_delay(3, 0.2, 5.0, rng) for _ in range(200)) > 0.8


async def test_breaker_opens_fails_fast_then_half_opens() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, reset_after=10, clock=lambda: now[0])
    failing = Flaky(*[ActionError("boom", retryable=True)] * 3)
    for _ in range(2):
        with pytest.raises(ActionError, match="boom"):
            await breaker.call(failing)
    assert breaker.state == "open"
    with pytest.raises(ActionError, match="circuit open"):
        await breaker.call(failing)
    assert failing.calls == 2
    now[0] = 11
    assert breaker.state == "half-open"
    with pytest.raises(ActionError, match="boom"):
        await breaker.call(failing)  # the trial fails: open again
    assert breaker.state == "open"
    now[0] = 22
    assert await breaker.call(Flaky(None)) == "ok"
    assert breaker.state == "closed"


def test_cache_expires() -> None:
    now = [0.0]
    cache = TtlCache(max_items=2, clock=lambda: now[0])
    cache.put("a", 1, ttl=5)
    assert cache.get("a") == (True, 1)
    now[0] = 6
    assert cache.get("a") == (False, None)


async def test_registry_uses_a_breaker_per_target_and_caches() -> None:
    registry = ActionRegistry(breaker_threshold=1, breaker_reset=60, backoff_base=0.001)
    calls: list[str] = []

    async def down(args: object) -> None:
        calls.append("down")
        raise ActionError("503", retryable=True)

    async def up(args: object) -> dict[str, int]:
        calls.append("up")
        return {"n": len(calls)}

    registry.register("a.down", down, CallPolicy(retries=2, target="a"))
    registry.register("b.up", up, CallPolicy(cache_ttl=60, target="b"))
    with pytest.raises(ActionError, match="circuit open"):
        await registry.call("a.down", {})
    assert calls == ["down"]  # the breaker opened after one failure; the retry failed fast
    assert await registry.call("b.up", {"x": 1}) == {"n": 2}
    assert await registry.call("b.up", {"x": 1}) == {"n": 2}  # cached
    assert await registry.call("b.up", {"x": 2}) == {"n": 3}
    with pytest.raises(ActionError, match="no action named"):
        await registry.call("nope", {})
    await registry.close()
