"""The gateway's side of a handoff inside each turn: the customer is told honestly where they
stand, and every finished turn (the customer's words, the bot's replies, the handoff it caused)
is written to the conversation store by the worker, before its replies go out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError

from core.conversations import ConversationStore, Said, TurnFact, TurnLog
from core.errors import StoreUnavailable
from core.events import DeskEvents
from core.handoff import State
from core.hours import SupportHours
from core.models import Inbound, Outbound
from core.notice import WaitingNotice
from core.ports import Dialogue, NluResult, TurnOutcome
from core.redact import redact
from core.session import Session, TurnRecord

log = structlog.get_logger(__name__)

WHERE = {
    "webchat": "in this chat",
    "telegram": "here on Telegram",
    "whatsapp": "here on WhatsApp",
    "slack": "here in Slack",
    "email": "by e-mail, in this thread",
}


EMAIL_THREAD = ("message_id", "subject", "references", "reply_to", "exchange")
"""What an agent's reply by e-mail needs to thread under the customer's last mail."""

DESK_SENDERS = frozenset({"handoff-api", "console"})
"""Senders of the `/bot` presses the team queues to hand a conversation back: not the
customer's words."""


class Presence(Protocol):
    """How many agents were seen in the console lately (`core.sql.agents.SqlAgents`)."""

    async def online(self, within: float) -> int: ...


@dataclass(frozen=True, slots=True)
class DeskTexts:
    """What the customer is told; `{where}` is their channel, `{hours}` and `{next}` the
    support hours and their next opening."""

    closed: str = (
        "Our support team is away now (their hours: {hours}). A person will answer you {where} "
        "when they are back, from {next}; your messages are kept for them."
    )
    nobody: str = (
        "Nobody from the support team is online this moment. A person will answer you {where} "
        "as soon as one is; your messages are kept for them."
    )
    waiting: str = (
        "A person from our support team has been asked and will answer you {where}; "
        "everything you write reaches them. (Type /bot to talk to me again.)"
    )


class DeskDialogue:
    """Wraps the flow runner: adds where the customer stands to the turn that hands them to a
    person and, while they wait, to their messages at most every `remind_every` seconds
    (silence otherwise: a person answers them). Keeps the slots the flows had collected."""

    def __init__(
        self,
        inner: Dialogue,
        store: ConversationStore,
        presence: Presence,
        hours: SupportHours,
        *,
        remind_every: float = 300.0,
        presence_window: float = 120.0,
        texts: DeskTexts | None = None,
    ):
        self._inner = inner
        self._store = store
        self._presence = presence
        self._hours = hours
        self._remind_every = remind_every
        self._window = presence_window
        self._texts = texts or DeskTexts()

    def __getattr__(self, name: str) -> Any:
        # The flow runner's own methods (`replace`, `use_threshold`, `bot`) stay reachable.
        return getattr(self._inner, name)

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        before = session.handoff
        slots = _collected(session)
        outcome = await self._inner.step(session, inbound, nlu)
        now = time.time()
        if session.handoff and not before:
            session.handoff_at = now
            session.handoff_slots = slots
            extra = await self._availability(inbound.channel, now)
            session.handoff_notice_at = now
            return _with(outcome, inbound, extra)
        if not session.handoff:
            if before:
                session.handoff_at, session.handoff_slots = None, {}
            return outcome
        if outcome.replies or now - session.handoff_notice_at < self._remind_every:
            return outcome
        if await self._with_agent(session.key):
            return outcome  # an agent is talking with them: no reminders in between
        session.handoff_notice_at = now
        where = WHERE.get(inbound.channel, "here")
        text = await self._availability(inbound.channel, now) or self._texts.waiting.format(
            where=where
        )
        return _with(outcome, inbound, text)

    async def _with_agent(self, key: str) -> bool:
        try:
            conv = await self._store.by_key(key)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("desk.store_unavailable", error=str(exc))
            return False
        return conv is not None and conv.state == State.AGENT

    async def _availability(self, channel: str, now: float) -> str | None:
        where = WHERE.get(channel, "here")
        at = datetime.fromtimestamp(now, UTC)
        if not self._hours.is_open(at):
            nxt = self._hours.next_open(at)
            shown = nxt.strftime("%a %H:%M %Z") if nxt else "their next opening"
            return self._texts.closed.format(where=where, hours=self._hours.text, next=shown)
        try:
            online = await self._presence.online(self._window)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("desk.presence_unknown", error=str(exc))
            return None
        if online == 0:
            return self._texts.nobody.format(where=where)
        return None


def _collected(session: Session) -> dict[str, Any]:
    slots = dict(session.slots)
    for frame in session.stack:
        slots.update(frame.slots)
    return slots


def _with(outcome: TurnOutcome, inbound: Inbound, text: str | None) -> TurnOutcome:
    if text is None:
        return outcome
    outcome.replies = (*outcome.replies, Outbound(conversation=inbound.conversation, text=text))
    return outcome


def _said(inbound: Inbound) -> str:
    if inbound.kind == "delete":
        return "[deleted a message]"
    text = inbound.text
    if inbound.kind == "edit":
        text = f"[edited] {text}"
    if not text and inbound.payload:
        text = f"[pressed {inbound.payload}]"
    if inbound.attachments:
        kinds = ", ".join(a.kind for a in inbound.attachments)
        text = f"{text}\n[{kinds}]" if text else f"[{kinds}]"
    return text


class Recorder:
    """The engine's `TurnRecorder`: writes a finished turn to the store and tells the console.
    A store that fails makes the turn wait (`StoreUnavailable`), so no customer message is
    lost; writing the same turn again changes nothing. The transcript (the customer's words and
    the bot's replies, which may repeat them) and the turn's own record keep text redacted
    (`core.redact`) unless `raw_text`; so does the team's notice. With a `notice`, the team is
    told when a customer starts waiting."""

    def __init__(
        self,
        store: ConversationStore,
        events: DeskEvents,
        notice: WaitingNotice | None = None,
        *,
        raw_text: bool = False,
    ):
        self._store = store
        self._events = events
        self._notice = notice
        self._raw_text = raw_text

    async def record(self, session: Session, inbounds: Sequence[Inbound]) -> None:
        if not inbounds:
            return
        # Redaction reads every character (a megabyte-long mail included): off the event loop,
        # so the other conversations and /healthz never wait on it.
        entry = (
            self._entry(session, inbounds)
            if self._raw_text
            else await asyncio.to_thread(self._entry, session, inbounds)
        )
        await self._written(entry)

    def _entry(self, session: Session, inbounds: Sequence[Inbound]) -> TurnLog:
        customer = [
            i for i in inbounds if not (i.sender.id in DESK_SENDERS and i.payload == "/bot")
        ]
        last = session.history[-1] if session.history else None
        turn = session.turn_entries[-1] if session.turn_entries else inbounds[-1].dedupe_key
        slots = session.handoff_slots if session.handoff else {}
        meta = {k: v for k, v in inbounds[-1].meta.items() if k in EMAIL_THREAD}
        return TurnLog(
            conversation=session.conversation,
            customer=(customer or inbounds)[-1].sender,
            said=[Said(i.dedupe_key, self._kept(_said(i)), i.received_at) for i in customer],
            replies=[
                Said(f"{turn}:{n}", self._kept(r.text), 0.0) for n, r in enumerate(session.pending)
            ],
            intent=last.intent if last else None,
            confidence=last.confidence if last else None,
            slots={**_collected(session), **slots},
            handoff=session.handoff,
            handoff_queue=session.handoff_queue,
            handoff_at=session.handoff_at,
            meta=meta,
            failed_actions=session.failed_actions,
            turn=self._fact(inbounds[-1].dedupe_key, last),
            feedback=last.feedback if last else None,
        )

    async def _written(self, entry: TurnLog) -> None:
        try:
            written = await self._store.record_turn(entry)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(f"conversation store: {exc}") from exc
        conv = written.conversation
        if written.moved is not None:
            await self._events.publish("queue", conversation=conv.id, state=conv.state.value)
            if self._notice is not None and written.moved.to_state == State.WAITING:
                words = entry.said[-1].text if entry.said else ""
                await self._notice.tell(conv, written.moved, words)
        if written.new_messages:
            await self._events.publish("message", conversation=conv.id, state=conv.state.value)

    def _kept(self, text: str) -> str:
        return text if self._raw_text else redact(text)

    def _fact(self, key: str, last: TurnRecord | None) -> TurnFact | None:
        if last is None or last.outcome is None:
            return None  # a session saved before turns carried their outcome
        text = last.user or (f"[pressed {last.payload}]" if last.payload else "")
        return TurnFact(
            key=key,
            at=last.at,
            text=self._kept(text),
            intent=last.intent,
            confidence=last.confidence,
            ranking=list(last.ranking),
            outcome=last.outcome,
            flow=last.flow,
            flow_end=last.flow_end,
            latency=last.latency,
            asked_feedback=last.asked_feedback,
        )
