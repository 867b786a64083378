"""Keys with expiry in one SQLite file: what the embedded default must remember across a
restart and between processes on one machine (the queue's dedupe keys, spent webhook tokens)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from core.errors import StoreUnavailable
from core.sqlite.wal import enable_wal

T = TypeVar("T")

SEEN = "seen"
CLAIM = "claim"
SWEEP_ROWS = 500
"""Expired rows deleted per write at most: the work of one write stays bounded however much
expired at once, and a steady stream of writes keeps up with what expires."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    since REAL NOT NULL DEFAULT 0,
    expires REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS keys_expires ON keys (expires);
"""


class SqliteKeys:
    """The memory queue's `SeenJournal` and the webhooks' `ClaimStore` in the embedded default.

    Every SQLite call runs on one thread of its own, so the event loop never waits on the disk
    and the connection is only ever used by the thread that opened it. The file is opened on
    first use: a process that never starts its services creates nothing. Several processes on
    one machine may share the file (WAL, each claim one immediate transaction)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-keys")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            enable_wal(db.execute)
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    # -- the queue's dedupe keys -----------------------------------------------------------

    async def recall(self) -> list[str]:
        """The dedupe keys still inside their window."""
        return await self._run(self._recall, self._clock())

    def _recall(self, now: float) -> list[str]:
        rows = self._conn().execute(
            "SELECT key FROM keys WHERE kind = ? AND expires > ?", (SEEN, now)
        )
        return [key for (key,) in rows]

    async def record(self, keys: Sequence[str], ttl: float) -> None:
        """Remember `keys` for `ttl` seconds from now (one transaction for the batch)."""
        await self._run(self._record, list(keys), self._clock(), ttl)

    def _record(self, keys: list[str], now: float, ttl: float) -> None:
        db = self._conn()
        with _transaction(db):
            db.executemany(
                "INSERT OR REPLACE INTO keys (kind, key, value, expires) VALUES (?, ?, '', ?)",
                [(SEEN, k, now + ttl) for k in keys],
            )
            _sweep(db, now)

    async def forget(self, keys: Sequence[str]) -> int:
        """Drop these dedupe keys now (a customer's erasure); returns how many were kept."""
        return await self._run(self._forget, list(keys))

    def _forget(self, keys: list[str]) -> int:
        db = self._conn()
        with _transaction(db):
            return sum(
                db.execute("DELETE FROM keys WHERE kind = ? AND key = ?", (SEEN, k)).rowcount
                for k in keys
            )

    # -- one-time credentials --------------------------------------------------------------

    async def claim(self, key: str, value: str, ttl: float, retry_for: float) -> bool:
        """See `core.ports.ClaimStore.claim`."""
        return await self._run(self._claim, key, value, ttl, retry_for, self._clock())

    def _claim(self, key: str, value: str, ttl: float, retry_for: float, now: float) -> bool:
        db = self._conn()
        # IMMEDIATE: the read and the write are one step for every process sharing the file.
        with _transaction(db, "BEGIN IMMEDIATE"):
            row = db.execute(
                "SELECT value, since FROM keys WHERE kind = ? AND key = ? AND expires > ?",
                (CLAIM, key, now),
            ).fetchone()
            if row is not None:
                return bool(row[0] == value and now - row[1] < retry_for)
            db.execute(
                "INSERT OR REPLACE INTO keys (kind, key, value, since, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (CLAIM, key, value, now, now + ttl),
            )
            _sweep(db, now)
            return True

    # -- upkeep ----------------------------------------------------------------------------

    async def count(self) -> int:
        """Rows on disk, expired or not (for tests and the curious)."""
        return await self._run(self._count)

    def _count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM keys").fetchone()[0])

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(pool, db.close)
        pool.shutdown(wait=False)


@contextmanager
def _transaction(db: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises (the connection is in autocommit
    mode, so nothing is left open between calls)."""
    db.execute(begin)
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _sweep(db: sqlite3.Connection, now: float) -> None:
    db.execute(
        "DELETE FROM keys WHERE rowid IN (SELECT rowid FROM keys WHERE expires <= ? LIMIT ?)",
        (now, SWEEP_ROWS),
    )
