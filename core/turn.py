"""One turn of one conversation, in named steps: screen the senders, replay what an earlier try
saved, understand the message, decide the answer, record it, deliver it, acknowledge the queue.

The engine (`core.engine`) decides when a turn runs; this module decides what a turn does, and
what happens when it fails: tried again, waited out, or dead-lettered with an apology.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict, Unpack

import structlog

from core.backlog import EditPolicy, Settled, coalesce, resolve_choice, settle_edits
from core.conversations import TurnRecorder
from core.errors import QueueUnavailable, SendRefused, StaleSession, StoreUnavailable
from core.metrics import Metrics
from core.models import Inbound, Outbound
from core.outbox import Outbox
from core.outcomes import (
    ASKED_FEEDBACK_KEY,
    FEEDBACK_KEY,
    FLOW_END_KEY,
    count_turn,
    outcome_of,
)
from core.ports import (
    Delivery,
    Dialogue,
    EditRule,
    IntentParser,
    NluResult,
    Queue,
    SenderLimit,
    SessionStore,
    TurnOutcome,
)
from core.senderlimit import screen
from core.session import Session, TurnRecord

log = structlog.get_logger(__name__)

STALE_RETRIES = 8
"""Turns run again in a row because another worker saved the session first. Each run reads the
fresh state, so one is normally enough; past this the store is taken to be at fault and the
run counts as a failed attempt."""
RANKED = 3
"""Intents of the model's ranking kept with each turn (the chosen one and its runners-up)."""


class TurnParts(TypedDict):
    """What a turn works with, handed to `TurnRunner` (and through `core.engine.Engine`, which
    passes them on) as keywords."""

    queue: Queue
    store: SessionStore
    nlu: IntentParser
    dialogue: Dialogue
    outbox: Outbox
    metrics: Metrics
    senders: NotRequired[SenderLimit | None]
    """Inbound flood control per sender; None: off."""
    recorder: NotRequired[TurnRecorder | None]
    """Writes each finished turn to the conversation store; None: nothing kept."""


@dataclass(frozen=True, slots=True)
class TurnSettings:
    """How a turn is tried and answered; `core.engine.EngineSettings` extends it with the
    scheduling knobs, and `gateway/` fills both from the settings."""

    max_attempts: int = 3
    """Tries of one turn before its events go to the dead letters."""
    retry_backoff: float = 0.5
    history_turns: int = 20
    failure_text: str = "Sorry, something went wrong on my side. Please try again in a moment."


class TurnRunner:
    """Runs the turn of one batch of deliveries (one conversation's backlog) to its end: answered
    and acknowledged, or dead-lettered. The engine calls `run` once per batch, one batch of a
    conversation at a time; the steps are public so that a test can stop a turn between two of
    them, as a worker that dies there would."""

    def __init__(self, *, settings: TurnSettings | None = None, **parts: Unpack[TurnParts]):
        self._queue = parts["queue"]
        self._store = parts["store"]
        self._nlu = parts["nlu"]
        self._dialogue = parts["dialogue"]
        self._outbox = parts["outbox"]
        self._metrics = parts["metrics"]
        self._cfg = settings or TurnSettings()
        self._senders = parts.get("senders")
        self._recorder = parts.get("recorder")

    async def run(self, batch: Sequence[Delivery]) -> None:
        """The whole turn, with its retries. Never raises but for cancellation: a turn that
        cannot be done ends in the dead letters, and the engine goes on with the next."""
        batch = list(batch)
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

    async def _attempts(self, batch: list[Delivery], inbound: Inbound) -> None:
        attempt = outage = stale = 0
        while True:
            try:
                await self.once(batch)
                return
            except SendRefused as exc:
                await self._give_up(batch, inbound, f"send refused: {exc}", apologise=False)
                return
            except (QueueUnavailable, StoreUnavailable) as exc:
                # The queue or store is down: the entries stay pending (nothing is lost, and
                # another worker may take them over), so wait without using up an attempt.
                outage += 1
                self._metrics.errors.labels(stage="backend").inc()
                log.warning("turn.backend_unavailable", error=str(exc), waits=outage)
                await asyncio.sleep(min(self._cfg.retry_backoff * 2 ** min(outage, 6), 5.0))
                continue
            except StaleSession as exc:
                # Another worker saved this conversation first: nothing failed, the next run
                # reads its state (and replays what it already answered).
                stale += 1
                if stale <= STALE_RETRIES:
                    log.info("turn.stale_session", error=str(exc), reruns=stale)
                    continue
                error: Exception = exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a turn must never take the worker down
                error = exc
            attempt += 1
            stale = 0
            self._metrics.errors.labels(stage="turn").inc()
            log.error("turn.failed", attempt=attempt, error=repr(error), exc_info=error)
            if attempt >= self._cfg.max_attempts:
                break
            await asyncio.sleep(self._cfg.retry_backoff * 2 ** (attempt - 1))
        await self._give_up(batch, inbound, repr(error), apologise=True)
        count_turn(self._metrics, inbound.channel, None, None)

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

    async def once(self, batch: Sequence[Delivery]) -> None:
        """One try of the turn, every step in order. Raises what a step raised; `run` decides
        whether to try again."""
        t0 = time.perf_counter()
        batch = await self.screen(batch)
        if not batch:
            return
        key = batch[0].conversation_key
        session = await self._store.load(key)
        rest = await self.replay(session, batch)
        if not rest:
            return
        if session is None:
            session = Session.new(rest[-1].inbound.conversation)
        answer, changes = self.settle(rest)
        if not answer:
            await self.record_changes(session, rest, changes)
            await self.acknowledge(rest)
            log.info("turn.unanswered_changes", changes=[c.fate for _, c in changes])
            return
        inbound, nlu = await self.understand(session, answer)
        outcome = await self.decide(session, inbound, nlu)
        await self.record(session, rest, inbound, nlu, outcome, changes=changes)
        await self.deliver(session)
        await self.acknowledge(rest)
        intent: str | None = nlu.intent
        confidence = nlu.confidence
        if outcome.intent is not None:  # the dialogue settled the intent (a button, a choice)
            intent, confidence = outcome.intent, _confidence(outcome, nlu)
        log.info(
            "turn",
            intent=intent,
            confidence=round(confidence, 4),
            latency_ms=round((time.perf_counter() - t0) * 1000, 2),
            replies=len(session.pending),
            batched=len(rest),
            after_replay=len(rest) < len(batch),
        )

    # -- the steps, in the order a turn takes them --------------------------------------------

    async def screen(self, batch: Sequence[Delivery]) -> list[Delivery]:
        """Flood control: over a sender's limit, the first event is answered "slow down" once
        and the rest are acknowledged unanswered. The deliveries left to handle."""
        if self._senders is None:
            return list(batch)
        return await screen(self._senders, batch, outbox=self._outbox, queue=self._queue)

    async def replay(self, session: Session | None, batch: Sequence[Delivery]) -> list[Delivery]:
        """Entries an earlier try (or a worker that died) already computed and saved: their
        saved replies are sent (each once, by the outbox's idempotency) and the entries
        acknowledged, so no dialogue runs twice. The deliveries still to compute."""
        if session is None or not session.turn_entries:
            return list(batch)
        done = [d for d in batch if d.entry_id in session.turn_entries]
        if not done:
            return list(batch)
        await self._keep(session, done)
        await self.deliver(session)
        await self._queue.ack(done)
        log.info("turn.replayed", entries=[d.entry_id for d in done])
        return [d for d in batch if d not in done]

    def settle(
        self, batch: Sequence[Delivery]
    ) -> tuple[list[Delivery], list[tuple[Delivery, Settled]]]:
        """Edits and deletes, as the dialogue's rule says (`core.backlog.settle_edits`): the
        deliveries to answer (a message carrying the text of its edit), and the edits and
        deletes with what became of them, to record."""
        if all(d.inbound.kind == "message" for d in batch):
            return list(batch), []
        fates = settle_edits([d.inbound for d in batch], self.edit_policy())
        answer = [
            d if s.inbound is d.inbound else Delivery(d.entry_id, s.inbound, d.attempts)
            for d, s in zip(batch, fates, strict=True)
            if s.inbound is not None
        ]
        changes = [(d, s) for d, s in zip(batch, fates, strict=True) if d.inbound.kind != "message"]
        return answer, changes

    def edit_policy(self) -> EditPolicy:
        """What the dialogue does with edits, read each time (the flows may be reloaded)."""
        dialogue = self._dialogue
        return dialogue.edits if isinstance(dialogue, EditRule) else "replace_unanswered"

    async def record_changes(
        self,
        session: Session,
        batch: Sequence[Delivery],
        changes: Sequence[tuple[Delivery, Settled]],
    ) -> None:
        """A batch with nothing to answer (edits and deletes only): kept in the session's
        history and the conversation store, counted, and saved as a turn without replies, so a
        worker that takes it over acknowledges it rather than records it twice."""
        self._remember_changes(session, changes)
        session.turn_entries = [d.entry_id for d in batch]
        session.pending = []
        session.revision += 1
        session.updated_at = time.time()
        await self._store.save(session)
        self._count_changes(changes)
        await self._keep(session, batch)

    def _remember_changes(
        self, session: Session, changes: Sequence[tuple[Delivery, Settled]]
    ) -> None:
        for d, _ in changes:
            session.remember(
                TurnRecord(
                    at=d.inbound.received_at,
                    user=d.inbound.text,
                    kind=d.inbound.kind,
                    target=d.inbound.target_id,
                ),
                self._cfg.history_turns,
            )

    def _count_changes(self, changes: Sequence[tuple[Delivery, Settled]]) -> None:
        for d, settled in changes:
            self._metrics.edits.labels(
                channel=d.inbound.channel, kind=d.inbound.kind, fate=settled.fate
            ).inc()
            log.info(
                "turn.message_changed",
                kind=d.inbound.kind,
                fate=settled.fate,
                target=d.inbound.target_id,
                changed_event=d.inbound.event_id,
            )

    async def understand(
        self, session: Session, batch: Sequence[Delivery]
    ) -> tuple[Inbound, NluResult]:
        """The batch as one message (a backlog read together), a typed choice mapped to the
        button it names, and what the intent model makes of the text. A button press or an
        empty message is not sent to the model."""
        for d in batch:  # each of a backlog's button presses has its spinner to stop
            await self._outbox.before_turn(d.inbound)
        inbound = resolve_choice(session.offered, coalesce([d.inbound for d in batch]))
        if inbound.payload is not None or not inbound.text.strip():
            return inbound, NluResult.empty(inbound.text)
        return inbound, await self._nlu.parse(inbound.text)

    async def decide(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        """The dialogue's step: it updates `session` in place and says what to answer. The
        buttons of the last reply that has some are remembered, so "2" can press one next
        turn."""
        outcome = await self._dialogue.step(session, inbound, nlu)
        replies = list(outcome.replies)
        with_buttons = [r for r in replies if r.buttons]
        if with_buttons:
            session.offered = list(with_buttons[-1].buttons)
        elif replies:
            session.offered = []
        return outcome

    async def record(
        self,
        session: Session,
        batch: Sequence[Delivery],
        inbound: Inbound,
        nlu: NluResult,
        outcome: TurnOutcome,
        *,
        changes: Sequence[tuple[Delivery, Settled]] = (),
    ) -> None:
        """Save the session with the turn in its history and its replies pending, before any
        reply goes out: a worker that dies after this step is replayed, not run again.
        Raises `StaleSession` when another worker saved the conversation first. `changes`:
        the batch's edits and deletes (`settle`), kept in the history before the turn."""
        replies = list(outcome.replies)
        self._remember_changes(session, changes)
        ended = outcome.extra.get(FLOW_END_KEY)
        arrived = min((d.inbound.received_at for d in batch), default=inbound.received_at)
        session.remember(
            TurnRecord(
                at=inbound.received_at,
                user=inbound.text,
                payload=inbound.payload,
                intent=outcome.intent or nlu.intent,
                confidence=_confidence(outcome, nlu),
                bot=[r.text for r in replies],
                ranking=[(s.intent, s.confidence) for s in nlu.ranking[:RANKED]],
                outcome=outcome_of(outcome),
                flow=ended[1] if ended else outcome.extra.get("flow"),
                flow_end=ended[0] if ended else None,
                latency=max(0.0, time.time() - arrived),
                asked_feedback=bool(outcome.extra.get(ASKED_FEEDBACK_KEY)),
                feedback=outcome.extra.get(FEEDBACK_KEY),
            ),
            self._cfg.history_turns,
        )
        session.turn_entries = [d.entry_id for d in batch]
        session.pending = replies
        session.revision += 1
        session.updated_at = time.time()
        await self._store.save(session)
        # Counted once saved: a saved turn is replayed, never run again, so never counted twice.
        count_turn(self._metrics, inbound.channel, outcome, outcome.intent or nlu.intent)
        self._count_changes(changes)
        # Kept before the replies go out: once the customer has an answer, the turn's record is
        # in the conversation store too (for the console, or a test reading after the answer).
        await self._keep(session, batch)

    async def _keep(self, session: Session, batch: Sequence[Delivery]) -> None:
        if self._recorder is not None:
            await self._recorder.record(session, [d.inbound for d in batch])

    async def deliver(self, session: Session) -> None:
        """Send the replies the session holds pending, each under the key (turn, index), so a
        retried turn sends none twice."""
        turn = session.turn_entries[-1]
        for i, reply in enumerate(session.pending):
            await self._outbox.deliver(f"{turn}:{i}", reply)

    async def acknowledge(self, batch: Sequence[Delivery]) -> None:
        """The entries are done: taken off the queue."""
        await self._queue.ack(batch)


def _confidence(outcome: TurnOutcome, nlu: NluResult) -> float:
    """The dialogue's confidence when it settled the intent itself, else the model's."""
    return outcome.confidence if outcome.confidence is not None else nlu.confidence
