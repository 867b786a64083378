"""Stopping a background task the same way everywhere: cancelled, then awaited, so nothing it
holds is still in use when its owner closes what it shares."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (None: nothing to do) and wait for it to end; its cancellation is not an
    error of the caller's."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
