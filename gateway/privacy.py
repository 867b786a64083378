"""A customer's erasure (`gateway forget`) and the daily deletion of kept records older than
RETENTION_DAYS, over whichever stores this configuration uses."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import structlog

from config.settings import Settings
from core.forget import Customer, Erasure
from core.redis import forget as redis_forget
from core.redis.client import connect
from core.review import trainfile
from core.sql import forget as sql_forget
from core.sql.db import EMBEDDED, Database, database_url
from core.sqlite import forget as sqlite_forget
from core.sqlite.db import Database as StateFile
from core.sqlite.keys import SqliteKeys
from core.tasks import BackgroundTask
from gateway.storage import KEYS_FILE, SPILL_FILE, STATE_FILE, STATE_SCHEMA

log = structlog.get_logger(__name__)

DAY = 86400.0
FIRST_SWEEP = 300.0
"""Seconds after start before the first pass: a process restarted often still sweeps, and one
just started (a test writing records dated in the past, a deployment's health checks) is left
to settle first."""


async def forget_customer(
    settings: Settings, who: Customer, *, db: Database | None = None
) -> Erasure:
    """`db`: the process's own conversation store (the console's); None: opened here."""
    erasure = Erasure()
    if db is not None:
        found = await sql_forget.forget(db, who, erasure)
    else:
        found = await _forget_in_sql(settings, who, erasure)
    examples = await asyncio.to_thread(
        trainfile.drop,
        trainfile.file_in(settings.flows_dir),
        trainfile.lock_in(settings.data_dir),
        *found.turns,
    )
    if examples:
        erasure.removed["reviewed examples"] += examples
    if settings.redis_url is not None:
        redis = connect(settings.redis_url.get_secret_value())
        try:
            await redis_forget.forget(
                redis, settings.redis_prefix, who, erasure, found.conversations, found.events
            )
        finally:
            await redis.aclose()
    else:
        keys = SqliteKeys(settings.data_dir / KEYS_FILE)
        state_file = settings.data_dir / STATE_FILE
        state = StateFile(state_file, STATE_SCHEMA) if state_file.exists() else None
        try:
            spill = settings.data_dir / SPILL_FILE
            await sqlite_forget.forget(
                spill, keys, who, erasure, found.events, state=state, known=found.conversations
            )
        finally:
            await keys.close()
            if state is not None:
                await state.close()
    # The customer is not named: this line must not be the trace the erasure removed.
    log.info("customer.forgotten", channel=who.channel, removed=dict(erasure.removed))
    return erasure


def conversation_db(settings: Settings) -> Database | None:
    """The conversation store, not migrated (an erasure or a sweep changes no schema); None
    when the embedded default's file was never made."""
    url = settings.database_url.get_secret_value() if settings.database_url else None
    if url is None and not (settings.data_dir / EMBEDDED).exists():
        return None
    return Database(database_url(url, settings.data_dir), migrate=False)


async def _forget_in_sql(settings: Settings, who: Customer, erasure: Erasure) -> sql_forget.Found:
    db = conversation_db(settings)
    if db is None:
        return sql_forget.Found()
    async with db:
        return await sql_forget.forget(db, who, erasure)


class Retention(BackgroundTask):
    """Deletes, once a day, kept customer records older than RETENTION_DAYS: the conversation
    store's conversations untouched that long and older rows of the others (messages, turns,
    handoffs, notes and what points at them), and the dead letters in Redis (each holds a
    customer's event). The embedded store's keys expire on their own (dedupe keys after
    DEDUPE_TTL, sessions after SESSION_TTL). An async context manager, entered with the
    process's other parts."""

    task_name = "retention"

    def __init__(
        self,
        settings: Settings,
        *,
        every: float = DAY,
        first: float = FIRST_SWEEP,
        db: Database | None = None,
    ):
        super().__init__()
        self.settings = settings
        self.every = every
        self.first = first
        self.db = db
        """The process's own conversation store (its desk's); None: opened for each pass."""

    async def sweep(self) -> Counter[str]:
        """One pass now; returns the records deleted, by kind."""
        s = self.settings
        removed: Counter[str] = Counter()
        if not s.retention_days:
            return removed
        before = time.time() - s.retention_days * DAY
        if s.redis_url is not None:
            redis = connect(s.redis_url.get_secret_value())
            try:
                removed["dead letters"] = await redis_forget.expire_dead_letters(
                    redis, s.redis_prefix, int(before * 1000)
                )
            finally:
                await redis.aclose()
        if self.db is not None:
            removed.update(await sql_forget.expire(self.db, before))
        elif (db := conversation_db(s)) is not None:
            async with db:
                removed.update(await sql_forget.expire(db, before))
        log.info("retention.swept", days=s.retention_days, removed=dict(+removed))
        return removed

    async def _run(self) -> None:
        if not self.settings.retention_days:
            return
        await asyncio.sleep(self.first)
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - tried again the next day
                log.warning("retention.failed", error=repr(exc))
            await asyncio.sleep(self.every)
