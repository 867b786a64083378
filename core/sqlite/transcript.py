"""The web chat's transcript in the embedded SQLite file: what a page shows again after a
reload, or catches up on after a reconnect."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from core.sqlite.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS transcript (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    entry TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transcript_conversation ON transcript (conversation, seq);
CREATE INDEX IF NOT EXISTS transcript_expires ON transcript (expires);
"""

DELETE = "DELETE FROM transcript WHERE conversation = ?"
"""One conversation's whole transcript (its key the parameter), when a customer is erased."""

SWEEP_ROWS = 500
"""Expired entries deleted per write at most (see `core.sqlite.sessions.SWEEP_ROWS`)."""


class SqliteTranscript:
    """The `Transcript` of the embedded default. A conversation's entries expire together,
    `ttl` seconds after its last one, like its session; only its newest `keep` are kept."""

    def __init__(
        self,
        db: Database,
        *,
        ttl: float,
        keep: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._keep = keep
        self._clock = clock

    async def add(self, conversation: str, entry: dict[str, Any]) -> int:
        now = self._clock()
        expires = now + self._ttl
        async with self._db.transaction() as db:
            # AUTOINCREMENT: a number is never given twice, even after its row is gone, so a
            # page that saw up to N never mistakes a newer entry for one it has.
            cur = await db.execute(
                "INSERT INTO transcript (conversation, entry, expires) VALUES (?, ?, ?)",
                (conversation, json.dumps(entry, ensure_ascii=False), expires),
            )
            seq = int(cur.lastrowid or 0)
            await db.execute(
                "UPDATE transcript SET expires = ? WHERE conversation = ? AND expires > ?",
                (expires, conversation, now),
            )
            await db.execute(
                "DELETE FROM transcript WHERE conversation = ? AND seq <= (SELECT seq FROM"
                " transcript WHERE conversation = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (conversation, conversation, self._keep),
            )
            await db.execute(
                "DELETE FROM transcript WHERE seq IN"
                " (SELECT seq FROM transcript WHERE expires <= ? LIMIT ?)",
                (now, SWEEP_ROWS),
            )
        return seq

    async def since(
        self, conversation: str, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        rows = await self._db.fetchall(
            "SELECT seq, entry FROM (SELECT seq, entry FROM transcript"
            " WHERE conversation = ? AND seq > ? AND expires > ? ORDER BY seq DESC LIMIT ?)"
            " ORDER BY seq",
            (conversation, after, self._clock(), limit),
        )
        return [{**json.loads(entry), "seq": seq} for seq, entry in rows]

    async def close(self) -> None:
        await self._db.close()
