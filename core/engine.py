"""The engine: takes events from the queue and hands them to the turn runner, one conversation in
order, different conversations in parallel, a backlog as one turn; a graceful stop. What one turn
does (and how it is retried) is `core.turn`'s."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Unpack

import structlog

from core.errors import QueueUnavailable
from core.models import Inbound
from core.ports import (
    Delivery,
)
from core.turn import TurnParts, TurnRunner, TurnSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class EngineSettings(TurnSettings):
    """The engine's scheduling knobs, and (inherited) how each turn is tried. `gateway/` builds
    one from the settings for every process that runs workers."""

    concurrency: int = 64
    """Turns handled at once (different conversations)."""
    prefetch: int = 64
    """Events taken from the queue and held in memory at most; the rest waits in the queue."""
    fetch_timeout: float = 0.5


class Engine:
    """The worker's scheduler: takes events from the queue as room allows, keeps one mailbox per
    conversation, and runs a conversation's turns one after another (whatever piled up meanwhile
    as one batch) while different conversations run in parallel. `gateway/` starts one in every
    process that works the queue; `turns` does the work of each turn."""

    def __init__(self, *, settings: EngineSettings | None = None, **parts: Unpack[TurnParts]):
        self._queue = parts["queue"]
        self._metrics = parts["metrics"]
        self._cfg = settings or EngineSettings()
        self.turns = TurnRunner(settings=self._cfg, **parts)
        self._sem = asyncio.Semaphore(self._cfg.concurrency)
        self._mailbox: dict[str, deque[Delivery]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._held = 0
        self._room = asyncio.Event()
        self._room.set()
        self._fetcher: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[None]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._fetcher = asyncio.create_task(self._fetch_loop(), name="engine-fetch")

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop taking events, let the turns already taken finish (up to `timeout`), and leave
        anything else pending in the queue for the next start or another worker."""
        if self._fetcher is not None:
            self._fetcher.cancel()
            await asyncio.gather(self._fetcher, return_exceptions=True)
            self._fetcher = None
        tasks = list(self._tasks.values())
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.warning("engine.stop_timeout", unfinished=len(pending), timeout_s=timeout)
        log.info("engine.stopped", finished=len(done))

    @property
    def running(self) -> bool:
        return self._fetcher is not None and not self._fetcher.done()

    def expect(self, inbound: Inbound) -> asyncio.Future[None]:
        """A future resolved once `inbound` has been handled (answered or dead-lettered).
        Call before queueing it; used by the terminal chat to keep turns in step with stdin."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters[inbound.dedupe_key] = fut
        return fut

    # -- taking events ---------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        while True:
            await self._room.wait()
            try:
                batch = await self._queue.take(
                    self._cfg.prefetch - self._held, self._cfg.fetch_timeout
                )
            except QueueUnavailable as exc:
                log.warning("engine.queue_unavailable", error=str(exc))
                self._metrics.errors.labels(stage="queue").inc()
                await asyncio.sleep(1.0)
                continue
            for d in batch:
                self._hold(d)

    def _hold(self, d: Delivery) -> None:
        key = d.conversation_key
        self._mailbox.setdefault(key, deque()).append(d)
        self._held += 1
        if self._held >= self._cfg.prefetch:
            self._room.clear()
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._drive(key), name=f"conv-{key}")

    def _release(self, n: int) -> None:
        self._held -= n
        if self._held < self._cfg.prefetch:
            self._room.set()

    async def _drive(self, key: str) -> None:
        """Run one conversation's turns in order. Whatever piled up while waiting for a slot, or
        during the previous turn, becomes the next turn as a whole."""
        try:
            while True:
                async with self._sem:
                    box = self._mailbox.pop(key, None)
                    if box:
                        batch = list(box)
                        try:
                            await self.turns.run(batch)
                        finally:
                            self._release(len(batch))
                            self._answered(batch)
                if key not in self._mailbox:
                    return
        finally:
            self._tasks.pop(key, None)

    def _answered(self, batch: list[Delivery]) -> None:
        for d in batch:
            fut = self._waiters.pop(d.inbound.dedupe_key, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
