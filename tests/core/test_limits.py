"""Abuse limits in one process: windows that free up, events counted once, claims with an owner,
and a memory that forgets what went quiet."""

from __future__ import annotations

from core.limits import MemoryLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_window_allows_its_limit_then_says_how_long_to_wait() -> None:
    clock = Clock()
    limits = MemoryLimits(clock)
    for i in range(3):
        assert await limits.hit("k", 3, 60, f"e{i}") == 0.0
        clock.now += 10
    assert await limits.hit("k", 3, 60, "e3") == 30.0  # the first leaves the window at 1060
    assert await limits.hit("k", 3, 60, "e4") == 30.0  # refused events are not counted
    clock.now += 30
    assert await limits.hit("k", 3, 60, "e3") == 0.0
    assert await limits.hit("other", 3, 60, "e0") == 0.0


async def test_an_event_counted_before_is_allowed_again_and_counted_once() -> None:
    """A turn run again (its session could not be saved) must not be refused by itself."""
    limits = MemoryLimits(Clock())
    assert await limits.hit("k", 1, 60, "turn-1") == 0.0
    assert await limits.hit("k", 1, 60, "turn-1") == 0.0
    assert await limits.hit("k", 1, 60, "turn-2") > 0


async def test_no_limit_when_the_limit_is_zero() -> None:
    limits = MemoryLimits(Clock())
    assert all([await limits.hit("k", 0, 60, f"e{i}") == 0.0 for i in range(100)])


async def test_a_claim_is_its_owners_until_it_runs_out_or_is_released() -> None:
    clock = Clock()
    limits = MemoryLimits(clock)
    assert await limits.claim("reset:a", 600, "turn-1") == 0.0
    assert await limits.claim("reset:a", 600, "turn-1") == 0.0  # the same turn again
    assert await limits.claim("reset:a", 600, "turn-2") == 600.0
    clock.now += 100
    assert await limits.claim("reset:a", 600, "turn-2") == 500.0
    await limits.release("reset:a", "turn-2")  # not the owner: nothing happens
    assert await limits.claim("reset:a", 600, "turn-3") == 500.0
    await limits.release("reset:a", "turn-1")
    assert await limits.claim("reset:a", 600, "turn-3") == 0.0
    clock.now += 600
    assert await limits.claim("reset:a", 600, "turn-4") == 0.0


async def test_memory_forgets_keys_that_went_quiet() -> None:
    """A flood of new client addresses must not grow the table for the life of the process."""
    clock = Clock()
    limits = MemoryLimits(clock)
    for i in range(10_000):
        await limits.hit(f"addr:{i}", 5, 60, "e")
        await limits.claim(f"once:{i}", 60, "o")
    clock.now += 61
    await limits.hit("addr:new", 5, 60, "e")
    await limits.claim("once:new", 60, "o")
    assert sum(len(t) for t in limits._windows.values()) == 1
    assert sum(len(t) for t in limits._claims.values()) == 1
