"""The worker's write after each turn: the conversation made or brought up to date, the turn's
lines and its own record, the customer's feedback, a handoff's transition, in one transaction.

Blocking code run by `Database.write` (on SQLite, a thread of its own with the blocking driver),
and every statement built once and given its values as parameters: a turn's write is on every
message's path, and building and compiling statements per call, each handed to aiosqlite's
thread and back, cost several times what SQLite itself does."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core.conversations import Direction, Said, Transition, TurnLog, TurnWritten
from core.handoff import WITH_PEOPLE, State, plan
from core.sql.models import Base, ConversationRow, HandoffRow, MessageRow, TurnRow
from core.sql.rows import conversation_of, names_of

_NAME_CAP = 255


def _cap(value: str | None, n: int = _NAME_CAP) -> str | None:
    return value[:n] if value is not None else None


@dataclass(frozen=True)
class _Statements:
    new_conversation: Any
    """INSERT a conversation unless its key is taken, RETURNING the row (as the ORM object)."""
    lines: Any
    """INSERT messages unless their key is in the conversation already, RETURNING the new ids."""
    turn: Any
    """INSERT the turn's record unless written before."""


def _table(row: type[Base]) -> Table:
    """The mapped class's table: Core statements, no ORM bookkeeping on the turn's path."""
    return Base.metadata.tables[row.__tablename__]


@functools.cache
def _statements(dialect: str) -> _Statements:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    messages, turns = _table(MessageRow), _table(TurnRow)
    return _Statements(
        new_conversation=insert(ConversationRow)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(ConversationRow),
        lines=insert(messages)
        .on_conflict_do_nothing(index_elements=["conversation_id", "key"])
        .returning(messages.c.id),
        turn=insert(turns).on_conflict_do_nothing(index_elements=["conversation_id", "key"]),
    )


_BY_KEY = select(ConversationRow).where(ConversationRow.key == bindparam("key"))
_FEEDBACK = (
    update(_table(TurnRow))
    .where(
        TurnRow.conversation_id == bindparam("conv"),
        TurnRow.key == bindparam("turn"),
        TurnRow.feedback.is_(None),
    )
    .values(feedback=bindparam("value"), feedback_at=bindparam("now"))
)


def write_turn(dialect: str, log: TurnLog, s: Session) -> TurnWritten:
    """Writes `log` in `s`'s transaction; writing the same turn again changes nothing."""
    now = time.time()
    known = _statements(dialect)
    row = _upsert(s, known, log, now)
    last_in = max((m.at for m in log.said), default=now)
    lines = [_line(row.id, m, "in", "customer", m.at, log) for m in log.said]
    lines += [_line(row.id, m, "out", "bot", last_in, None) for m in log.replies]
    new = len(s.execute(known.lines, lines).all()) if lines else 0
    if log.turn is not None:
        t = log.turn
        s.execute(
            known.turn,
            {
                "conversation_id": row.id,
                "key": t.key[:255],
                "channel": row.channel,
                "at": t.at,
                "text": t.text,
                "intent": _cap(t.intent, 128),
                "confidence": t.confidence,
                "ranking": [[name[:128], float(c)] for name, c in t.ranking],
                "outcome": t.outcome,
                "flow": _cap(t.flow, 128),
                "flow_end": t.flow_end,
                "latency": t.latency,
                "asked_feedback": t.asked_feedback,
            },
        )
    if log.feedback is not None:
        # The first answer is kept; a turn that is gone (erased, past retention) takes none.
        value, key = log.feedback
        s.execute(_FEEDBACK, {"conv": row.id, "turn": key[:255], "value": value, "now": now})
    moved = None
    state = State(row.state)
    if log.handoff and log.handoff_at is not None and log.handoff_at != row.handoff_at:
        # A new request for a person (not the same turn written again).
        row.handoff_at, row.handoff_queue = log.handoff_at, log.handoff_queue
        if plan(state, row.holder_id, State.WAITING, None):
            moved = transition(s, row, State.WAITING, "bot", None, None, log.handoff_queue, now)
    elif not log.handoff and state in WITH_PEOPLE:
        # The customer typed /bot (or the session expired): the bot has it again.
        moved = transition(s, row, State.BOT, "customer", None, None, "back to the bot", now)
    s.flush()
    return TurnWritten(conversation_of(row, names_of(s, {row.holder_id})), new, moved)


def _line(
    conversation_id: int, m: Said, direction: Direction, author: str, at: float, log: TurnLog | None
) -> dict[str, Any]:
    """A message of the turn; one written before (the same turn recorded again) is kept as
    it was."""
    return {
        "conversation_id": conversation_id,
        "key": m.key[:255],
        "direction": direction,
        "author": author,
        "agent_id": None,
        "text": m.text,
        "at": at,
        "intent": _cap(log.intent, 128) if log else None,
        "confidence": log.confidence if log else None,
        "status": "sent",
        "error": None,
    }


def _upsert(s: Session, known: _Statements, log: TurnLog, now: float) -> ConversationRow:
    ref = log.conversation
    found = s.execute(_BY_KEY, {"key": ref.key}).scalar_one_or_none()
    if found is None:
        # Two workers may meet on a conversation's first turns: one row, whoever wins.
        made = s.execute(
            known.new_conversation,
            {
                "key": ref.key,
                "channel": ref.channel,
                "chat_id": _cap(ref.chat_id) or "",
                "thread_id": _cap(ref.thread_id),
                "customer_id": _cap(log.customer.id) or "",
                "customer_name": _cap(log.customer.name),
                "state": State.BOT.value,
                "slots": {},
                "meta": {},
                "failed_actions": [],
                "created_at": now,
                "updated_at": now,
            },
        )
        found = made.scalar_one_or_none() or s.execute(_BY_KEY, {"key": ref.key}).scalar_one()
    if log.customer.name and log.said:
        found.customer_name = _cap(log.customer.name)
    asking = log.handoff and log.handoff_at != found.handoff_at
    if log.intent is not None and (asking or not log.handoff):
        # While people have it, the intent stays the one that brought them in.
        found.intent, found.confidence = log.intent[:128], log.confidence
    found.slots = _jsonable(log.slots)
    found.failed_actions = [f.model_dump() for f in log.failed_actions]
    if log.meta:
        found.meta = {**(found.meta or {}), **log.meta}
    found.updated_at = now
    return found


def transition(
    s: Session | AsyncSession,
    row: ConversationRow,
    to: State,
    actor: str,
    agent_id: int | None,
    holder_id: int | None,
    reason: str | None,
    now: float,
) -> Transition:
    """Moves `row` to `to` and records the transition (the caller checked it is allowed)."""
    before = State(row.state)
    row.state = to.value
    row.holder_id = holder_id if to == State.AGENT else None
    if to == State.WAITING:
        row.waiting_since = now
    elif to not in WITH_PEOPLE:
        row.waiting_since = None
    row.updated_at = now
    s.add(
        HandoffRow(
            conversation_id=row.id,
            from_state=before.value,
            to_state=to.value,
            actor=actor[:80],
            agent_id=agent_id,
            reason=reason,
            at=now,
        )
    )
    return Transition(before, to, actor, reason, now)


def _jsonable(value: Any) -> Any:
    """Slots as JSON can hold them (a date becomes its ISO text)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)
