"""A customer's erasure (`gateway forget`) and the daily deletion of kept records older than
RETENTION_DAYS, over whichever stores this configuration uses."""

from __future__ import annotations

import asyncio
import time

import structlog

from config.settings import Settings
from core.forget import Customer, Erasure
from core.redis import forget as redis_forget
from core.redis.client import connect
from core.sqlite import forget as sqlite_forget
from core.sqlite.keys import SqliteKeys
from core.tasks import BackgroundTask

log = structlog.get_logger(__name__)

DAY = 86400.0


async def forget_customer(settings: Settings, who: Customer) -> Erasure:
    erasure = Erasure()
    if settings.redis_url is not None:
        redis = connect(settings.redis_url.get_secret_value())
        try:
            await redis_forget.forget(redis, settings.redis_prefix, who, erasure)
        finally:
            await redis.aclose()
    else:
        keys = SqliteKeys(settings.data_dir / "gateway-keys.sqlite3")
        try:
            await sqlite_forget.forget(settings.data_dir / "queue-spill.jsonl", keys, who, erasure)
        finally:
            await keys.close()
        erasure.notes.append(
            "without Redis, a running `serve` holds sessions in its memory only: they end "
            "SESSION_TTL after the customer's last message and are never written to disk"
        )
    # The customer is not named: this line must not be the trace the erasure removed.
    log.info("customer.forgotten", channel=who.channel, removed=dict(erasure.removed))
    return erasure


class Retention(BackgroundTask):
    """Deletes, once a day, kept customer records older than RETENTION_DAYS: the dead letters
    in Redis (each holds a customer's event). The embedded store keeps nothing that long: its
    dedupe keys expire after DEDUPE_TTL and sessions after SESSION_TTL. An async context
    manager, entered with the process's other parts."""

    task_name = "retention"

    def __init__(self, settings: Settings, *, every: float = DAY):
        super().__init__()
        self.settings = settings
        self.every = every

    async def sweep(self) -> int:
        """One pass now; returns the records deleted."""
        s = self.settings
        if not s.retention_days or s.redis_url is None:
            return 0
        before_ms = int((time.time() - s.retention_days * DAY) * 1000)
        redis = connect(s.redis_url.get_secret_value())
        try:
            n = await redis_forget.expire_dead_letters(redis, s.redis_prefix, before_ms)
        finally:
            await redis.aclose()
        log.info("retention.swept", dead_letters=n, days=s.retention_days)
        return n

    async def _run(self) -> None:
        if not self.settings.retention_days or self.settings.redis_url is None:
            return
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - tried again the next day
                log.warning("retention.failed", error=repr(exc))
            await asyncio.sleep(self.every)
