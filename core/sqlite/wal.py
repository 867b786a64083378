"""Switching a SQLite file to write-ahead logging when several processes open it at once.

The switch needs the file's exclusive lock, and SQLite answers "database is locked" at once,
without waiting out the busy timeout, when two connections would otherwise wait on each other
(two processes creating the same new file). So the switch is tried again, with short growing
pauses, until a deadline: the mode is kept in the file, so only the first opening ever waits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

WAL = "PRAGMA journal_mode=WAL"
WITHIN = 10.0
"""Seconds to keep trying before the error is raised as it came."""


def _pauses(within: float) -> Iterator[float]:
    deadline = time.monotonic() + within
    pause = 0.005
    while time.monotonic() < deadline:
        yield pause
        pause = min(pause * 2, 0.2)


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def enable_wal(execute: Callable[[str], Any], *, within: float = WITHIN) -> None:
    """`execute(WAL)` on a blocking connection, again while the file is locked."""
    for pause in _pauses(within):
        try:
            execute(WAL)
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            time.sleep(pause)
    execute(WAL)


async def enable_wal_async(
    execute: Callable[[str], Awaitable[Any]], *, within: float = WITHIN
) -> None:
    """`await execute(WAL)` on an asynchronous connection, again while the file is locked."""
    for pause in _pauses(within):
        try:
            await execute(WAL)
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise
            await asyncio.sleep(pause)
    await execute(WAL)
