"""`ConversationStore` in SQL: the worker writes each finished turn, the console reads and acts."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncGenerator

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.conversations import (
    Author,
    Conversation,
    Direction,
    Message,
    Note,
    Search,
    Transition,
    TurnFact,
    TurnLog,
    TurnWritten,
)
from core.errors import HeldByOther
from core.handoff import WITH_PEOPLE, State, plan
from core.insights import TurnStat
from core.sql.db import Database
from core.sql.models import (
    AgentRow,
    ConversationRow,
    HandoffRow,
    MessageRow,
    NoteRow,
    TurnRow,
)
from core.sql.rows import conversation_of, message_of, names_of, turn_of
from core.sql.turns import transition, write_turn

_EXPORT_BATCH = 500


class SqlConversations:
    """Conversations, messages, transitions and notes in the `Database`'s tables."""

    def __init__(self, db: Database):
        self._db = db

    # -- reading ---------------------------------------------------------------------------

    async def _names(self, s: AsyncSession, ids: set[int | None]) -> dict[int, str]:
        return await s.run_sync(names_of, ids)

    async def _convs(self, s: AsyncSession, stmt: Select[ConversationRow]) -> list[Conversation]:
        rows = list((await s.execute(stmt)).scalars())
        names = await self._names(s, {r.holder_id for r in rows})
        return [conversation_of(r, names) for r in rows]

    async def get(self, conversation_id: int) -> Conversation | None:
        async with self._db.session() as s:
            found = await self._convs(
                s, select(ConversationRow).where(ConversationRow.id == conversation_id)
            )
        return found[0] if found else None

    async def by_key(self, key: str) -> Conversation | None:
        async with self._db.session() as s:
            found = await self._convs(s, select(ConversationRow).where(ConversationRow.key == key))
        return found[0] if found else None

    async def queue(self) -> list[Conversation]:
        stmt = (
            select(ConversationRow)
            .where(ConversationRow.state.in_([st.value for st in WITH_PEOPLE]))
            .order_by(ConversationRow.waiting_since.asc(), ConversationRow.id.asc())
        )
        async with self._db.session() as s:
            return await self._convs(s, stmt)

    async def search(self, query: Search) -> list[Conversation]:
        stmt = select(ConversationRow)
        if query.text:
            like = f"%{_escape_like(query.text.lower())}%"
            stmt = stmt.where(
                or_(
                    func.lower(ConversationRow.customer_id).like(like, escape="\\"),
                    func.lower(ConversationRow.customer_name).like(like, escape="\\"),
                    func.lower(ConversationRow.chat_id).like(like, escape="\\"),
                )
            )
        if query.channel:
            stmt = stmt.where(ConversationRow.channel == query.channel)
        if query.intent:
            stmt = stmt.where(ConversationRow.intent == query.intent)
        if query.state:
            stmt = stmt.where(ConversationRow.state == query.state.value)
        if query.since is not None:
            stmt = stmt.where(ConversationRow.updated_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(ConversationRow.updated_at < query.until)
        stmt = stmt.order_by(ConversationRow.updated_at.desc()).limit(max(1, min(query.limit, 500)))
        async with self._db.session() as s:
            return await self._convs(s, stmt)

    async def messages(self, conversation_id: int, limit: int = 500) -> list[Message]:
        stmt = (
            select(MessageRow)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.at.desc(), MessageRow.id.desc())
            .limit(limit)
        )
        async with self._db.session() as s:
            rows = list((await s.execute(stmt)).scalars())
            names = await self._names(s, {r.agent_id for r in rows})
        return [message_of(r, names) for r in reversed(rows)]

    async def transitions(self, conversation_id: int) -> list[Transition]:
        stmt = (
            select(HandoffRow)
            .where(HandoffRow.conversation_id == conversation_id)
            .order_by(HandoffRow.id.asc())
        )
        async with self._db.session() as s:
            rows = (await s.execute(stmt)).scalars()
            return [
                Transition(State(r.from_state), State(r.to_state), r.actor, r.reason, r.at)
                for r in rows
            ]

    async def notes(self, conversation_id: int) -> list[Note]:
        stmt = (
            select(NoteRow, AgentRow.name)
            .join(AgentRow, AgentRow.id == NoteRow.agent_id)
            .where(NoteRow.conversation_id == conversation_id)
            .order_by(NoteRow.id.asc())
        )
        async with self._db.session() as s:
            return [Note(n.id, name, n.text, n.at) for n, name in (await s.execute(stmt))]

    # -- the worker's write after a turn ---------------------------------------------------

    async def record_turn(self, log: TurnLog) -> TurnWritten:
        return await self._db.write(functools.partial(write_turn, self._db.dialect, log))

    async def turns(self, conversation_id: int, limit: int = 500) -> list[TurnFact]:
        """The conversation's recorded turns, oldest first."""
        stmt = (
            select(TurnRow)
            .where(TurnRow.conversation_id == conversation_id)
            .order_by(TurnRow.at.desc(), TurnRow.id.desc())
            .limit(limit)
        )
        async with self._db.session() as s:
            rows = list((await s.execute(stmt)).scalars())
        return [turn_of(r) for r in reversed(rows)]

    async def asked_since(self, conversation_key: str, since: float) -> bool:
        stmt = (
            select(TurnRow.id)
            .join(ConversationRow, ConversationRow.id == TurnRow.conversation_id)
            .where(
                ConversationRow.key == conversation_key,
                TurnRow.asked_feedback.is_(True),
                TurnRow.at >= since,
            )
            .limit(1)
        )
        async with self._db.session() as s:
            return (await s.execute(stmt)).first() is not None

    async def turn_stats(
        self, since: float, until: float, channel: str | None = None
    ) -> list[TurnStat]:
        """What the insights count of the turns recorded in [since, until), of one channel
        or all. Of a handoff turn also: the queue of the transition it caused (the reason),
        and the outcome of the conversation's turn before it (a handoff too: the customer
        was already waiting for a person)."""
        handoff = TurnRow.outcome == "handoff"
        reason = (
            select(HandoffRow.reason)
            .where(
                HandoffRow.conversation_id == TurnRow.conversation_id,
                HandoffRow.to_state == State.WAITING.value,
                HandoffRow.actor == "bot",
                HandoffRow.at >= TurnRow.at,
            )
            .order_by(HandoffRow.at.asc())
            .limit(1)
            .correlate(TurnRow)
            .scalar_subquery()
        )
        before = aliased(TurnRow)
        previous = (
            select(before.outcome)
            .where(
                before.conversation_id == TurnRow.conversation_id,
                or_(before.at < TurnRow.at, and_(before.at == TurnRow.at, before.id < TurnRow.id)),
            )
            .order_by(before.at.desc(), before.id.desc())
            .limit(1)
            .correlate(TurnRow)
            .scalar_subquery()
        )
        stmt = select(
            TurnRow.conversation_id,
            TurnRow.channel,
            TurnRow.at,
            TurnRow.intent,
            TurnRow.outcome,
            TurnRow.latency,
            TurnRow.feedback,
            TurnRow.confidence,
            case((handoff, reason), else_=None).label("why"),
            case((handoff, previous), else_=None).label("before"),
        ).where(*_turns_in(since, until, channel))
        async with self._db.session() as s:
            rows = list(await s.execute(stmt))
        return [
            TurnStat(
                r.conversation_id,
                r.channel,
                r.at,
                r.intent,
                r.outcome,
                r.latency,
                r.feedback,
                r.confidence,
                reason=None if r.before == "handoff" else r.why,
                waiting=r.before == "handoff",
            )
            for r in rows
        ]

    async def turn_records(
        self, since: float, until: float, channel: str | None = None
    ) -> AsyncGenerator[tuple[int, str, TurnFact], None]:
        """The turns recorded in [since, until) as stored (text redacted unless the team
        keeps it raw), oldest first, read in batches so an export of months holds little."""
        # Columns, not ORM objects: nothing kept in the session's identity map, and several
        # times faster to read.
        stmt = (
            select(*TurnRow.__table__.columns)
            .where(*_turns_in(since, until, channel))
            .order_by(TurnRow.at.asc(), TurnRow.id.asc())
            .execution_options(yield_per=_EXPORT_BATCH)
        )
        async with self._db.session() as s:
            result = await s.stream(stmt)
            async for batch in result.partitions():
                for r in batch:
                    yield r.conversation_id, r.channel, turn_of(r)

    # -- the team's actions ----------------------------------------------------------------

    async def move(
        self,
        conversation_id: int,
        to: State,
        *,
        actor: str,
        agent_id: int | None = None,
        holder_id: int | None = None,
        reason: str | None = None,
        take_over: bool = False,
    ) -> Transition | None:
        now = time.time()
        async with self._db.session() as s, s.begin():
            stmt = select(ConversationRow).where(ConversationRow.id == conversation_id)
            if self._db.dialect == "postgresql":
                stmt = stmt.with_for_update()
            row = (await s.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise LookupError(conversation_id)
            current = State(row.state)
            if (
                to == State.AGENT
                and current == State.AGENT
                and row.holder_id not in (None, holder_id)
                and not take_over
            ):
                holder = (await self._names(s, {row.holder_id})).get(
                    row.holder_id or 0, "another agent"
                )
                raise HeldByOther(holder)
            if not plan(current, row.holder_id, to, holder_id if to == State.AGENT else None):
                return None
            return transition(s, row, to, actor, agent_id, holder_id, reason, now)

    async def add_message(
        self,
        conversation_id: int,
        *,
        key: str,
        direction: Direction,
        author: Author,
        text: str,
        agent_id: int | None = None,
        status: str = "sent",
    ) -> Message:
        row = MessageRow(
            conversation_id=conversation_id,
            key=key[:255],
            direction=direction,
            author=author,
            agent_id=agent_id,
            text=text,
            at=time.time(),
            status=status,
        )
        async with self._db.session() as s, s.begin():
            s.add(row)
            await s.flush()
            conv = await s.get(ConversationRow, conversation_id)
            if conv is not None:
                conv.updated_at = row.at
            names = await self._names(s, {agent_id})
        return message_of(row, names)

    async def set_status(self, message_id: int, status: str, error: str | None = None) -> None:
        async with self._db.session() as s, s.begin():
            row = await s.get(MessageRow, message_id)
            if row is not None:
                row.status, row.error = status, error

    async def add_note(self, conversation_id: int, agent_id: int, text: str) -> Note:
        row = NoteRow(conversation_id=conversation_id, agent_id=agent_id, text=text, at=time.time())
        async with self._db.session() as s, s.begin():
            s.add(row)
            await s.flush()
            name = (await self._names(s, {agent_id})).get(agent_id, "?")
        return Note(row.id, name, row.text, row.at)


def _turns_in(since: float, until: float, channel: str | None) -> list[ColumnElement[bool]]:
    found = [TurnRow.at >= since, TurnRow.at < until]
    if channel is not None:
        found.append(TurnRow.channel == channel)
    return found


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
