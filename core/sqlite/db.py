"""One SQLite file opened through aiosqlite: the connection runs on its own thread, so the event
loop never waits on the disk."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from core.errors import StoreUnavailable
from core.sqlite.wal import enable_wal_async


class Database:
    """The shared handle of the embedded stores (`SqliteSessionStore`, `SqliteTranscript`).

    Opened on first use, so a process that never starts its services creates no file; several
    processes on one machine may share the file (WAL; every write is one transaction)."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._schema = schema
        self._db: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()
        self._writing = asyncio.Lock()
        """One transaction at a time: the stores share one connection, and a second BEGIN on
        it while one is open would fail."""

    async def _conn(self) -> aiosqlite.Connection:
        if self._db is not None:
            return self._db
        async with self._opening:
            if self._db is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = await aiosqlite.connect(self.path, timeout=5.0, isolation_level=None)
                try:
                    await enable_wal_async(db.execute)
                    await db.execute("PRAGMA synchronous=NORMAL")
                    await db.executescript(self._schema)
                except BaseException:
                    await db.close()  # its thread too; the next call tries again
                    raise
                self._db = db
        return self._db

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        try:
            db = await self._conn()
            async with db.execute(sql, tuple(args)) as cur:
                return list(await cur.fetchall())
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    @asynccontextmanager
    async def transaction(
        self, begin: str = "BEGIN IMMEDIATE"
    ) -> AsyncIterator[aiosqlite.Connection]:
        """One write, all or nothing. IMMEDIATE takes the write lock first, so a read and the
        write that depends on it are one step for every process sharing the file."""
        try:
            db = await self._conn()
            async with self._writing:
                await db.execute(begin)
                try:
                    yield db
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    async def ping(self) -> None:
        await self.fetchall("SELECT 1")

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()
