"""The inbox: a queue of Inbound events with dedupe, behind an interface Redis Streams implements.

The in-memory queue is the embedded default. It is volatile, so on shutdown whatever was not
handled yet is written to a spill file and taken back at the next start: nothing queued is lost.
An event that arrives after that (a webhook or a web chat message still being answered while
the process stops) is added to the spill file before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import ValidationError

from core.errors import QueueUnavailable
from core.models import Inbound, invalid_fields
from core.ports import Delivery, SeenJournal
from core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event the memory queue gave up on, with the error, kept for inspection."""

    entry_id: str
    inbound: Inbound
    error: str
    at: float


JOURNAL_EVERY = 0.5
"""Seconds between two writes of new dedupe keys to the journal: one write a batch, off the
webhook's path. A crash loses at most this much dedupe memory (and the volatile queue itself);
a clean stop writes everything."""


class TtlSet:
    """Keys remembered for at least `ttl` seconds, and forgotten by twice that: two generations of
    plain sets, the older dropped whole each `ttl`. A webhook's `add` is one comparison and two
    lookups, cheaper than keeping an ordered map of expiry times; a key costs a set entry instead
    of a node and a float, though it may be kept up to twice as long, so at the peak the memory
    is about the same."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._new: set[str] = set()
        self._old: set[str] = set()
        self._turn = clock() + ttl
        """When `_new`, filled since one `ttl` before, becomes `_old` (and `_old` is dropped)."""

    def _age(self, now: float) -> None:
        if now < self._turn + self._ttl:
            self._old, self._new = self._new, set()
            self._turn += self._ttl
        else:  # nothing came for a whole generation: every key is older than `ttl`
            self._old, self._new = set(), set()
            self._turn = now + self._ttl

    def add(self, key: str) -> bool:
        """Remember `key`; False when it was already there."""
        now = self._clock()
        if now >= self._turn:
            self._age(now)
        if key in self._new or key in self._old:
            return False
        self._new.add(key)
        return True

    def __contains__(self, key: object) -> bool:
        now = self._clock()
        if now >= self._turn:
            self._age(now)
        return key in self._new or key in self._old

    def discard(self, key: str) -> None:
        self._new.discard(key)
        self._old.discard(key)


class MemoryQueue:
    """One process's queue: FIFO, deduped on (channel, event id) for at least `dedupe_ttl`
    seconds. With a `journal` the dedupe keys outlive the process: a platform's redelivery (or a
    replayed request) that comes after a restart is still a duplicate."""

    def __init__(
        self,
        *,
        dedupe_ttl: float = 86400.0,
        spill_path: Path | None = None,
        journal: SeenJournal | None = None,
    ):
        self._seen = TtlSet(dedupe_ttl)
        self._dedupe_ttl = dedupe_ttl
        self._journal = journal
        self._unsaved: list[str] | None = None if journal is None else []
        self._writer: asyncio.Task[None] | None = None
        self._spill_path = spill_path
        self._prefix = f"{secrets.token_hex(4)}-"
        self._ids = itertools.count(10**12)
        """Entry ids `<boot>-<13 digits>`: in the order they were given, as text too (the spill
        file is written in that order)."""
        self._ready: deque[Delivery] = deque()
        self._pending: dict[str, Delivery] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dead: list[DeadLetter] = []

    async def start(self) -> None:
        """Take back a spill file, then the journal's dedupe keys (in that order: a spilled
        event's key is in the journal too, and must not make it a duplicate of itself)."""
        await self._restore_spill()
        if self._journal is not None:
            for key in await self._journal.recall():
                self._seen.add(key)
            self._writer = asyncio.create_task(self._write_journal(), name="queue-journal")

    async def _write_journal(self) -> None:
        while True:
            await asyncio.sleep(JOURNAL_EVERY)
            await self._flush_journal()

    async def _flush_journal(self) -> None:
        if not self._unsaved or self._journal is None:
            return
        batch, self._unsaved = self._unsaved, []
        try:
            await self._journal.record(batch, self._dedupe_ttl)
        except Exception as exc:  # noqa: BLE001 - the dedupe in memory still holds
            log.error("queue.journal_failed", error=str(exc), keys=len(batch))

    async def _restore_spill(self) -> None:
        """A line that no longer reads (written by another version, or damaged) must not stop
        the gateway from starting: it is logged, and the file is kept aside as `<name>.bad`
        instead of being deleted."""
        path = self._spill_path
        if path is None or not path.exists():
            return
        restored, bad = 0, 0
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                inbound = Inbound.model_validate_json(line)
            except ValidationError as exc:
                bad += 1
                log.error(
                    "queue.spill_line_unreadable", path=str(path), line=n, error=invalid_fields(exc)
                )
                continue
            if await self.put(inbound):
                restored += 1
        if bad:
            path.replace(path.with_name(path.name + ".bad"))
        else:
            path.unlink()
        if restored:
            log.info("queue.restored", count=restored, path=str(path))

    async def close(self) -> None:
        """Write the journal's last keys, and spill what was not acknowledged, pending entries
        first so the order is kept."""
        await cancel_and_wait(self._writer)
        self._writer = None
        await self._flush_journal()
        # From here on no worker takes anything: what comes later goes to the spill file too.
        # (No await between this and the file's replacement, so no put falls in between.)
        self._closed = True
        left = sorted(
            list(self._pending.values()) + list(self._ready),
            key=lambda d: d.entry_id,
        )
        if not left:
            return
        if self._spill_path is None:
            log.warning("queue.dropped_on_close", count=len(left), hint="set QUEUE_SPILL_PATH")
            return
        self._spill_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._spill_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for d in left:
                fh.write(d.inbound.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self._spill_path)
        log.info("queue.spilled", count=len(left), path=str(self._spill_path))

    async def put(self, inbound: Inbound) -> bool:
        key = inbound.dedupe_key
        if self._closed:
            return self._put_late(inbound)
        if not self._seen.add(key):
            return False
        if self._unsaved is not None:
            self._unsaved.append(key)
        self._ready.append(Delivery(f"{self._prefix}{next(self._ids)}", inbound))
        self._wakeup.set()
        return True

    def _put_late(self, inbound: Inbound) -> bool:
        """After `close`: appended to the spill file (synced) for the next start, or refused
        (the webhook answers 503 and the platform retries) when there is no spill file."""
        if not self._seen.add(inbound.dedupe_key):
            return False
        if self._spill_path is None:
            self._seen.discard(inbound.dedupe_key)
            raise QueueUnavailable("the gateway is shutting down")
        try:
            self._spill_path.parent.mkdir(parents=True, exist_ok=True)
            with self._spill_path.open("a", encoding="utf-8") as fh:
                fh.write(inbound.to_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            self._seen.discard(inbound.dedupe_key)
            raise QueueUnavailable(f"shutting down, and the spill file failed: {exc}") from exc
        log.info("queue.spilled_late", path=str(self._spill_path))
        return True

    async def take(self, max_items: int, timeout: float) -> list[Delivery]:
        if not self._ready:
            self._wakeup.clear()
            try:
                # `asyncio.timeout`, not `wait_for`: no task per wait (this runs once per
                # message when the worker keeps up)
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                return []
        out: list[Delivery] = []
        while self._ready and len(out) < max_items:
            d = self._ready.popleft()
            self._pending[d.entry_id] = d
            out.append(d)
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            self._pending.pop(d.entry_id, None)

    async def dead_letter(self, deliveries: Sequence[Delivery], error: str) -> None:
        now = time.time()
        for d in deliveries:
            self._pending.pop(d.entry_id, None)
            self.dead.append(DeadLetter(d.entry_id, d.inbound, error, now))

    async def depth(self) -> int:
        return len(self._ready) + len(self._pending)

    async def ping(self) -> None:
        return None
