"""Starting and stopping a process's parts: each one an async context manager entered on one
`AsyncExitStack`, so a stop (or a start that fails half-way) exits only what was entered, in
reverse order, and goes on past a part that fails to stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

import structlog

log = structlog.get_logger(__name__)

Hook = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Part:
    """One thing a gateway process starts and stops: storage, a channel, the intent model, the
    flows, a listener, the engine. `open` makes a fresh context manager that starts the part on
    entry and stops it on exit; `name` says which part a failure came from."""

    name: str
    open: Callable[[], AbstractAsyncContextManager[object]]

    @classmethod
    def hooks(cls, name: str, start: Hook | None = None, stop: Hook | None = None) -> Part:
        """A part made of a start and a stop coroutine function (either may be left out)."""

        @asynccontextmanager
        async def started() -> AsyncIterator[None]:
            if start is not None:
                await start()
            try:
                yield
            finally:
                if stop is not None:
                    await stop()

        return cls(name, started)


class StopFailed(ExceptionGroup[Exception]):
    """Parts that failed to stop (each also logged with its name); every other part was still
    stopped."""


@asynccontextmanager
async def run_parts(parts: Sequence[Part]) -> AsyncIterator[None]:
    """Start `parts` in order and stop them in reverse. A part that fails to start stops the
    ones started before it and its error goes up; a part that fails to stop is logged and the
    rest are stopped, then `StopFailed` holds every such failure (or, when the body or a start
    already failed, that error goes up with the stop failures noted on it)."""
    failures: list[Exception] = []
    try:
        async with AsyncExitStack() as stack:
            for part in parts:
                await stack.enter_async_context(_Reported(part, failures))
            yield
    except BaseException as exc:
        for failure in failures:
            exc.add_note(f"also failed to stop: {failure!r}")
        raise
    if failures:
        raise StopFailed(f"{len(failures)} part(s) failed to stop", failures)


class _Reported:
    """A part's context manager whose exit failure is logged and collected instead of raised,
    so the stack goes on stopping the others."""

    def __init__(self, part: Part, failures: list[Exception]) -> None:
        self._part = part
        self._failures = failures
        self._cm = part.open()

    async def __aenter__(self) -> object:
        try:
            return await self._cm.__aenter__()
        except Exception as exc:
            log.error("gateway.part_start_failed", part=self._part.name, error=repr(exc))
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            await self._cm.__aexit__(exc_type, exc, tb)
        except Exception as failure:
            if failure is exc:
                return False  # the error in flight, re-raised by the part: not a stop failure
            log.error(
                "gateway.part_stop_failed",
                part=self._part.name,
                error=repr(failure),
                exc_info=failure,
            )
            failure.add_note(f"while stopping {self._part.name}")
            self._failures.append(failure)
        return False
