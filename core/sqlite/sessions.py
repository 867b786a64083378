"""Sessions in the embedded SQLite file: a conversation halfway through a flow carries on after
a restart, and is forgotten `ttl` seconds after its last turn as with Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.session import SESSION_FORMAT, Session
from core.sqlite.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY,
    format INTEGER NOT NULL,
    expires REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
"""

DELETE = "DELETE FROM sessions WHERE key = ?"
"""One conversation's session (its key the parameter): on `delete` and when a customer is
erased (`core.sqlite.forget`, in one transaction with the transcript's)."""

SWEEP_ROWS = 200
"""Expired sessions deleted per save at most: one save's work stays bounded however many
expired at once, and steady traffic keeps up with what expires."""


class SqliteSessionStore:
    """The `SessionStore` of the embedded default (no REDIS_URL): one row per conversation with
    its expiry. An expired row is never loaded, and saves delete expired rows a batch at a
    time, so the file does not grow with visitors who never come back."""

    def __init__(self, db: Database, *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock

    async def load(self, key: str) -> Session | None:
        rows = await self._db.fetchall(
            "SELECT format, data FROM sessions WHERE key = ? AND expires > ?",
            (key, self._clock()),
        )
        if not rows or rows[0][0] != SESSION_FORMAT:
            return None
        session = Session.model_validate_json(rows[0][1])
        return session if session.format == SESSION_FORMAT else None

    async def save(self, session: Session) -> None:
        now = self._clock()
        blob = session.model_dump_json()
        async with self._db.transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO sessions (key, format, expires, data) VALUES (?, ?, ?, ?)",
                (session.key, session.format, now + self._ttl, blob),
            )
            await db.execute(
                "DELETE FROM sessions WHERE rowid IN"
                " (SELECT rowid FROM sessions WHERE expires <= ? LIMIT ?)",
                (now, SWEEP_ROWS),
            )

    async def delete(self, key: str) -> None:
        async with self._db.transaction() as db:
            await db.execute(DELETE, (key,))

    async def count(self) -> int:
        """Rows on disk, expired or not (for tests and the curious)."""
        return int((await self._db.fetchall("SELECT count(*) FROM sessions"))[0][0])

    async def ping(self) -> None:
        await self._db.ping()

    async def close(self) -> None:
        await self._db.close()
