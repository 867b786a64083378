"""`ConversationStore` in SQL: the worker writes each finished turn, the console reads and acts."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
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
from core.session import FailedAction
from core.sql.db import Database
from core.sql.models import (
    AgentRow,
    Base,
    ConversationRow,
    HandoffRow,
    MessageRow,
    NoteRow,
    TurnRow,
)

_NAME_CAP = 255
_EXPORT_BATCH = 500


def _cap(value: str | None, n: int = _NAME_CAP) -> str | None:
    return value[:n] if value is not None else None


class SqlConversations:
    """Conversations, messages, transitions and notes in the `Database`'s tables."""

    def __init__(self, db: Database):
        self._db = db

    # -- reading ---------------------------------------------------------------------------

    async def _names(self, s: AsyncSession, ids: set[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = await s.execute(select(AgentRow.id, AgentRow.name).where(AgentRow.id.in_(wanted)))
        return {i: n for i, n in rows}

    async def _convs(self, s: AsyncSession, stmt: Select[ConversationRow]) -> list[Conversation]:
        rows = list((await s.execute(stmt)).scalars())
        names = await self._names(s, {r.holder_id for r in rows})
        return [_conversation(r, names) for r in rows]

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
        return [_message(r, names) for r in reversed(rows)]

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
        now = time.time()
        async with self._db.session() as s, s.begin():
            row = await self._upsert(s, log, now)
            new = 0
            last_in = max((m.at for m in log.said), default=now)
            for m in log.said:
                new += await _insert_once(
                    self, s, row.id, m.key, "in", "customer", m.text, m.at, log
                )
            for m in log.replies:
                new += await _insert_once(
                    self, s, row.id, m.key, "out", "bot", m.text, last_in, None
                )
            if log.turn is not None:
                await self._insert_turn(s, row.id, row.channel, log.turn)
            if log.feedback is not None:
                await _give_feedback(s, row.id, *log.feedback, now)
            moved = None
            state = State(row.state)
            if log.handoff and log.handoff_at is not None and log.handoff_at != row.handoff_at:
                # A new request for a person (not the same turn written again).
                row.handoff_at, row.handoff_queue = log.handoff_at, log.handoff_queue
                if plan(state, row.holder_id, State.WAITING, None):
                    moved = await self._record(
                        s, row, State.WAITING, "bot", None, None, log.handoff_queue, now
                    )
            elif not log.handoff and state in WITH_PEOPLE:
                # The customer typed /bot (or the session expired): the bot has it again.
                moved = await self._record(
                    s, row, State.BOT, "customer", None, None, "back to the bot", now
                )
            await s.flush()
            names = await self._names(s, {row.holder_id})
            conversation = _conversation(row, names)
        return TurnWritten(conversation, new, moved)

    async def _insert_turn(self, s: AsyncSession, conv_id: int, channel: str, t: TurnFact) -> None:
        await s.execute(
            self._insert(TurnRow)
            .values(
                conversation_id=conv_id,
                key=t.key[:255],
                channel=channel,
                at=t.at,
                text=t.text,
                intent=t.intent[:128] if t.intent else None,
                confidence=t.confidence,
                ranking=[[name[:128], float(c)] for name, c in t.ranking],
                outcome=t.outcome,
                flow=t.flow[:128] if t.flow else None,
                flow_end=t.flow_end,
                latency=t.latency,
                asked_feedback=t.asked_feedback,
            )
            .on_conflict_do_nothing(index_elements=["conversation_id", "key"])
        )

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
        return [_turn(r) for r in reversed(rows)]

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
                    yield r.conversation_id, r.channel, _turn(r)

    def _insert(self, table: type[Base]) -> Any:
        """INSERT with ON CONFLICT, in the dialect's own words."""
        if self._db.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _upsert(self, s: AsyncSession, log: TurnLog, now: float) -> ConversationRow:
        ref = log.conversation
        found = (
            await s.execute(select(ConversationRow).where(ConversationRow.key == ref.key))
        ).scalar_one_or_none()
        if found is None:
            # Two workers may meet on a conversation's first turns: one row, whoever wins.
            await s.execute(
                self._insert(ConversationRow)
                .values(
                    key=ref.key,
                    channel=ref.channel,
                    chat_id=_cap(ref.chat_id) or "",
                    thread_id=_cap(ref.thread_id),
                    customer_id=_cap(log.customer.id) or "",
                    customer_name=_cap(log.customer.name),
                    state=State.BOT.value,
                    slots={},
                    meta={},
                    failed_actions=[],
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )
            found = (
                await s.execute(select(ConversationRow).where(ConversationRow.key == ref.key))
            ).scalar_one()
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
            return await self._record(s, row, to, actor, agent_id, holder_id, reason, now)

    async def _record(
        self,
        s: AsyncSession,
        row: ConversationRow,
        to: State,
        actor: str,
        agent_id: int | None,
        holder_id: int | None,
        reason: str | None,
        now: float,
    ) -> Transition:
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
        return _message(row, names)

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


async def _insert_once(
    store: SqlConversations,
    s: AsyncSession,
    conversation_id: int,
    key: str,
    direction: Direction,
    author: Author,
    text: str,
    at: float,
    log: TurnLog | None,
) -> int:
    """1 when the line was new; a line written before (the same turn recorded again) is kept
    as it was."""
    done = await s.execute(
        store._insert(MessageRow)
        .values(
            conversation_id=conversation_id,
            key=key[:255],
            direction=direction,
            author=author,
            text=text,
            at=at,
            intent=(log.intent[:128] if log and log.intent else None),
            confidence=log.confidence if log else None,
            status="sent",
        )
        .on_conflict_do_nothing(index_elements=["conversation_id", "key"])
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def _give_feedback(
    s: AsyncSession, conversation_id: int, value: str, key: str, now: float
) -> None:
    """The first answer is kept; a turn that is gone (erased, past retention) takes none."""
    await s.execute(
        update(TurnRow)
        .where(
            TurnRow.conversation_id == conversation_id,
            TurnRow.key == key[:255],
            TurnRow.feedback.is_(None),
        )
        .values(feedback=value, feedback_at=now)
    )


def _turns_in(since: float, until: float, channel: str | None) -> list[ColumnElement[bool]]:
    found = [TurnRow.at >= since, TurnRow.at < until]
    if channel is not None:
        found.append(TurnRow.channel == channel)
    return found


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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


def _conversation(r: ConversationRow, names: dict[int, str]) -> Conversation:
    return Conversation(
        id=r.id,
        key=r.key,
        channel=r.channel,
        chat_id=r.chat_id,
        thread_id=r.thread_id,
        customer_id=r.customer_id,
        customer_name=r.customer_name,
        state=State(r.state),
        holder=names.get(r.holder_id) if r.holder_id is not None else None,
        intent=r.intent,
        confidence=r.confidence,
        slots=dict(r.slots or {}),
        handoff_queue=r.handoff_queue,
        handoff_at=r.handoff_at,
        waiting_since=r.waiting_since,
        created_at=r.created_at,
        updated_at=r.updated_at,
        meta=dict(r.meta or {}),
        failed_actions=tuple(FailedAction.model_validate(f) for f in r.failed_actions or ()),
    )


def _turn(r: TurnRow | Row[Any]) -> TurnFact:
    return TurnFact(
        key=r.key,
        at=r.at,
        text=r.text,
        intent=r.intent,
        confidence=r.confidence,
        ranking=[(str(n), float(c)) for n, c in (r.ranking or [])],
        outcome=r.outcome,
        flow=r.flow,
        flow_end=r.flow_end,
        latency=r.latency,
        asked_feedback=r.asked_feedback,
        feedback=r.feedback,
    )


def _message(r: MessageRow, names: dict[int, str]) -> Message:
    return Message(
        id=r.id,
        conversation_id=r.conversation_id,
        direction=r.direction,  # type: ignore[arg-type]
        author=r.author,  # type: ignore[arg-type]
        agent=names.get(r.agent_id) if r.agent_id is not None else None,
        text=r.text,
        at=r.at,
        intent=r.intent,
        confidence=r.confidence,
        status=r.status,
        error=r.error,
    )
