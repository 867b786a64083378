"""Stopping a background task the same way everywhere: cancelled, then awaited, so nothing it
holds is still in use when its owner closes what it shares."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any, ClassVar, Self


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (None: nothing to do) and wait for it to end; its cancellation is not an
    error of the caller's."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class BackgroundTask:
    """A part that runs one task from the moment it is entered until it is left: the ingress
    loops, the model watcher, the retention sweep. A subclass gives `_run` and `task_name`, and
    may extend `_open` (before the task starts) and `_close` (once it has ended). Leaving sets
    `_stopping` first, so a loop that checks it between two waits ends by itself; the task is
    then cancelled and awaited, so nothing `_close` shuts is still in use."""

    task_name: ClassVar[str] = "background"

    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        await self._open()
        self._task = asyncio.create_task(self._run(), name=self.task_name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._close()
