"""The engine: takes events from the queue and runs turns, one conversation in order, different
conversations in parallel, a backlog as one turn, retries and dead letters, graceful stop."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from core.backlog import coalesce, resolve_choice
from core.channel import ChannelSendError
from core.conversations import TurnRecorder
from core.errors import QueueUnavailable, StoreUnavailable
from core.metrics import Metrics
from core.models import Inbound, Outbound
from core.outbox import Outbox
from core.queue import Delivery, Queue
from core.senderlimit import SenderLimit, screen
from core.session import Session, TurnRecord
from core.store import SessionStore
from core.turn import Dialogue, IntentParser, NluResult

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int = 64
    """Turns handled at once (different conversations)."""
    prefetch: int = 64
    """Events taken from the queue and held in memory at most; the rest waits in the queue."""
    max_attempts: int = 3
    """Tries of one turn before its events go to the dead letters."""
    retry_backoff: float = 0.5
    history_turns: int = 20
    fetch_timeout: float = 0.5
    failure_text: str = "Sorry, something went wrong on my side. Please try again in a moment."


class Engine:
    def __init__(
        self,
        *,
        queue: Queue,
        store: SessionStore,
        nlu: IntentParser,
        dialogue: Dialogue,
        outbox: Outbox,
        metrics: Metrics,
        settings: EngineSettings | None = None,
        senders: SenderLimit | None = None,
        recorder: TurnRecorder | None = None,
    ):
        self._senders = senders
        self._recorder = recorder
        """Writes each finished turn to the conversation store; None: nothing kept."""
        """Inbound flood control per sender (issue 7); None: off."""
        self._queue = queue
        self._store = store
        self._nlu = nlu
        self._dialogue = dialogue
        self._outbox = outbox
        self._metrics = metrics
        self._cfg = settings or EngineSettings()
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
                            await self._turn(batch)
                        finally:
                            self._release(len(batch))
                if key not in self._mailbox:
                    return
        finally:
            self._tasks.pop(key, None)

    # -- one turn --------------------------------------------------------------------------

    async def _turn(self, batch: list[Delivery]) -> None:
        inbound = coalesce([d.inbound for d in batch])
        conv = inbound.conversation
        with structlog.contextvars.bound_contextvars(
            channel=conv.channel, conversation=conv.key, event_id=inbound.event_id
        ):
            self._metrics.in_flight.inc()
            started = min(d.inbound.received_at for d in batch)
            try:
                await self._attempts(batch, inbound)
            finally:
                self._metrics.in_flight.dec()
                self._metrics.turn_latency.labels(channel=conv.channel).observe(
                    max(0.0, time.time() - started)
                )
                for d in batch:
                    fut = self._waiters.pop(d.inbound.dedupe_key, None)
                    if fut is not None and not fut.done():
                        fut.set_result(None)

    async def _attempts(self, batch: list[Delivery], inbound: Inbound) -> None:
        channel = inbound.channel
        attempt = outage = 0
        while True:
            try:
                await self._run(batch, inbound)
                return
            except ChannelSendError as exc:
                if not exc.retryable:
                    await self._give_up(batch, inbound, f"send refused: {exc}", apologise=False)
                    return
                error: Exception = exc
            except (QueueUnavailable, StoreUnavailable) as exc:
                # The queue or store is down: the entries stay pending (nothing is lost, and
                # another worker may take them over), so wait without using up an attempt.
                outage += 1
                self._metrics.errors.labels(stage="backend").inc()
                log.warning("turn.backend_unavailable", error=str(exc), waits=outage)
                await asyncio.sleep(min(self._cfg.retry_backoff * 2 ** min(outage, 6), 5.0))
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a turn must never take the worker down
                error = exc
            attempt += 1
            self._metrics.errors.labels(stage="turn").inc()
            log.error("turn.failed", attempt=attempt, error=repr(error), exc_info=error)
            if attempt >= self._cfg.max_attempts:
                break
            await asyncio.sleep(self._cfg.retry_backoff * 2 ** (attempt - 1))
        await self._give_up(batch, inbound, repr(error), apologise=True)
        self._metrics.turns.labels(channel=channel, outcome="failed").inc()

    async def _give_up(
        self, batch: Sequence[Delivery], inbound: Inbound, error: str, *, apologise: bool
    ) -> None:
        try:
            await self._queue.dead_letter(batch, error)
        except QueueUnavailable as exc:
            # Left pending: it will be delivered again once the queue is back.
            log.error(
                "turn.dead_letter_failed", error=str(exc), entries=[d.entry_id for d in batch]
            )
            return
        log.error("turn.dead_lettered", entries=[d.entry_id for d in batch], error=error)
        if not apologise:
            return
        sorry = Outbound(conversation=inbound.conversation, text=self._cfg.failure_text)
        try:
            await self._outbox.deliver(f"{batch[-1].entry_id}:failed", sorry)
        except Exception as exc:  # noqa: BLE001 - the apology is best effort
            log.warning("turn.apology_failed", error=repr(exc))

    async def _run(self, batch: list[Delivery], inbound: Inbound) -> None:
        t0 = time.perf_counter()
        if self._senders is not None:  # a flood: answered once, the rest acknowledged unanswered
            batch = await screen(self._senders, batch, outbox=self._outbox, queue=self._queue)
            if not batch:
                return
            inbound = coalesce([d.inbound for d in batch])
        session = await self._store.load(inbound.conversation.key)
        replayed = False
        if session is not None and session.turn_entries:
            # Entries a previous attempt (or a worker that died) already computed: send what was
            # saved for them, run no dialogue twice.
            done = [d for d in batch if d.entry_id in session.turn_entries]
            if done:
                await self._record(session, done)
                await self._send(session)
                await self._queue.ack(done)
                self._metrics.turns.labels(channel=inbound.channel, outcome="replayed").inc()
                log.info("turn.replayed", entries=[d.entry_id for d in done])
                batch = [d for d in batch if d not in done]
                if not batch:
                    return
                inbound = coalesce([d.inbound for d in batch])
                replayed = True
        if session is None:
            session = Session.new(inbound.conversation)
        nlu = await self._compute(session, batch, inbound)
        # Kept before the replies go out: once the customer has an answer the turn's record
        # is there too (a console, or a test, reading after the answer finds it).
        await self._record(session, batch)
        await self._send(session)
        await self._queue.ack(batch)
        self._metrics.turns.labels(channel=inbound.channel, outcome="ok").inc()
        log.info(
            "turn",
            intent=nlu.intent,
            confidence=round(nlu.confidence, 4),
            latency_ms=round((time.perf_counter() - t0) * 1000, 2),
            replies=len(session.pending),
            batched=len(batch),
            after_replay=replayed,
        )

    async def _compute(
        self, session: Session, batch: list[Delivery], inbound: Inbound
    ) -> NluResult:
        for d in batch:  # each of a backlog's button presses has its spinner to stop
            await self._outbox.before_turn(d.inbound)
        inbound = resolve_choice(session.offered, inbound)
        if inbound.payload is not None or not inbound.text.strip():
            nlu = NluResult.empty(inbound.text)
        else:
            nlu = await self._nlu.parse(inbound.text)
        outcome = await self._dialogue.step(session, inbound, nlu)
        replies = list(outcome.replies)
        with_buttons = [r for r in replies if r.buttons]
        if with_buttons:
            session.offered = list(with_buttons[-1].buttons)
        elif replies:
            session.offered = []
        session.remember(
            TurnRecord(
                at=inbound.received_at,
                user=inbound.text,
                payload=inbound.payload,
                intent=outcome.intent or nlu.intent,
                confidence=outcome.confidence if outcome.confidence is not None else nlu.confidence,
                bot=[r.text for r in replies],
            ),
            self._cfg.history_turns,
        )
        session.turn_entries = [d.entry_id for d in batch]
        session.pending = replies
        session.revision += 1
        session.updated_at = time.time()
        await self._store.save(session)
        if outcome.intent is not None:
            return NluResult(
                text=nlu.text,
                intent=outcome.intent,
                confidence=outcome.confidence if outcome.confidence is not None else nlu.confidence,
                ranking=nlu.ranking,
                entities=nlu.entities,
            )
        return nlu

    async def _record(self, session: Session, batch: Sequence[Delivery]) -> None:
        if self._recorder is not None:
            await self._recorder.record(session, [d.inbound for d in batch])

    async def _send(self, session: Session) -> None:
        turn = session.turn_entries[-1]
        for i, reply in enumerate(session.pending):
            await self._outbox.deliver(f"{turn}:{i}", reply)
