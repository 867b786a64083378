"""`run_parts`: parts start in order and stop in reverse; a part that fails to stop does not keep
the others from stopping and every failure is reported; a start that fails half-way stops what
had started and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import structlog

from gateway.lifecycle import Part, StopFailed, run_parts


class Journal:
    """Parts that write what happens to them into one list."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def part(self, name: str, *, fail_start: bool = False, fail_stop: bool = False) -> Part:
        async def start() -> None:
            if fail_start:
                raise RuntimeError(f"{name} cannot start")
            self.events.append(f"start {name}")

        async def stop() -> None:
            self.events.append(f"stop {name}")
            if fail_stop:
                raise OSError(f"{name} cannot stop")

        return Part.hooks(name, start, stop)


async def test_parts_start_in_order_and_stop_in_reverse() -> None:
    j = Journal()
    async with run_parts([j.part("a"), j.part("b"), j.part("c")]):
        assert j.events == ["start a", "start b", "start c"]
    assert j.events[3:] == ["stop c", "stop b", "stop a"]


async def test_a_part_that_fails_to_stop_does_not_keep_the_others_open() -> None:
    j = Journal()
    parts = [j.part("a"), j.part("b", fail_stop=True), j.part("c", fail_stop=True), j.part("d")]
    with structlog.testing.capture_logs() as logs, pytest.raises(StopFailed) as caught:
        async with run_parts(parts):
            pass
    assert j.events[4:] == ["stop d", "stop c", "stop b", "stop a"]
    assert [str(e) for e in caught.value.exceptions] == ["c cannot stop", "b cannot stop"]
    failed = [e["part"] for e in logs if e["event"] == "gateway.part_stop_failed"]
    assert failed == ["c", "b"]


async def test_a_start_that_fails_half_way_stops_only_what_started() -> None:
    j = Journal()
    parts = [j.part("a"), j.part("b"), j.part("c", fail_start=True), j.part("d")]
    with structlog.testing.capture_logs() as logs, pytest.raises(RuntimeError, match="c cannot"):
        async with run_parts(parts):
            raise AssertionError("the body must not run")
    assert j.events == ["start a", "start b", "stop b", "stop a"]
    assert [e["part"] for e in logs if e["event"] == "gateway.part_start_failed"] == ["c"]


async def test_an_error_in_the_body_goes_up_with_the_stop_failures_noted() -> None:
    j = Journal()
    with pytest.raises(KeyError) as caught:
        async with run_parts([j.part("a"), j.part("b", fail_stop=True)]):
            raise KeyError("in the body")
    assert j.events[2:] == ["stop b", "stop a"]
    assert any("b cannot stop" in note for note in caught.value.__notes__)


async def test_a_part_may_be_any_async_context_manager() -> None:
    seen: list[str] = []

    @asynccontextmanager
    async def listening() -> AsyncIterator[None]:
        seen.append("bound")
        try:
            yield
        finally:
            seen.append("closed")

    with pytest.raises(StopFailed):
        async with run_parts([Part("listener", listening), Journal().part("x", fail_stop=True)]):
            assert seen == ["bound"]
    assert seen == ["bound", "closed"]
