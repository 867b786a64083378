"""Erasing one customer from the conversation store, and deleting what it keeps past the
retention period. Every table that hangs off `conversations` (messages, turns, handoffs, notes,
and any later table pointing at one of them, such as review items) is found from the database's
own foreign keys when the erasure runs, so a new table is covered without a change here, and
its rows go before the rows they point at."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
    MetaData,
    Table,
    and_,
    delete,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from core.forget import Customer, Erasure
from core.sql.db import Database

CONVERSATIONS = "conversations"
FEEDBACK = "feedback"
"""Reported apart: the 👍/👎 kept on the turns that asked for it."""
_ID_CAP = 255
"""Customer and chat ids are stored cut to this length (`core.sql.store`)."""


@dataclass(slots=True)
class Found:
    """What the store knew of the customer, for the stores that keep it by other keys: their
    conversations' keys (sessions, transcripts) and their events' dedupe keys."""

    conversations: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    turns: list[int] = field(default_factory=list)
    """Their recorded turns' ids: a reviewed example in flows/ names the turn it came from."""


async def forget(db: Database, who: Customer, erasure: Erasure) -> Found:
    """The customer's conversations (their direct chat, or those they were the customer of)
    and everything kept about them, counted by table in `erasure`."""
    async with db.engine.begin() as conn:
        meta = await _reflect(conn)
        conv = meta.tables.get(CONVERSATIONS)
        if conv is None:
            return Found()  # a database never migrated keeps nobody
        user = who.user[:_ID_CAP]
        theirs = and_(
            conv.c.channel == who.channel,
            or_(
                conv.c.customer_id == user,
                and_(conv.c.chat_id == user, conv.c.thread_id.is_(None)),
            ),
        )
        keys = (await conn.execute(select(conv.c.key).where(theirs))).scalars()
        found = Found([str(k) for k in keys])
        msgs = meta.tables.get("messages")
        if msgs is not None:  # a customer's line is keyed by its event's dedupe key
            said = select(msgs.c.key).where(
                msgs.c.direction == "in",
                msgs.c.conversation_id.in_(select(conv.c.id).where(theirs)),
            )
            found.events = [str(k) for k in (await conn.execute(said)).scalars()]
        turns = meta.tables.get("turns")
        if turns is not None:
            theirs_turns = select(turns.c.id).where(
                turns.c.conversation_id.in_(select(conv.c.id).where(theirs))
            )
            found.turns = [int(t) for t in (await conn.execute(theirs_turns)).scalars()]
        erasure.removed.update(await _erase(conn, meta, conv, theirs))
    return found


async def expire(db: Database, before: float) -> Counter[str]:
    """Deletes conversations untouched since `before` (seconds since the epoch) with all they
    hold, then the older rows (`at` before it) of the conversations still going."""
    removed: Counter[str] = Counter()
    async with db.engine.begin() as conn:
        meta = await _reflect(conn)
        conv = meta.tables.get(CONVERSATIONS)
        if conv is None:
            return removed
        removed.update(await _erase(conn, meta, conv, conv.c.updated_at < before))
        for table in _below(meta, conv):
            if "at" in table.c:
                removed.update(await _erase(conn, meta, table, table.c.at < before))
    return +removed  # only what was found


async def _reflect(conn: AsyncConnection) -> MetaData:
    def read(sync: Connection) -> MetaData:
        meta = MetaData()
        if inspect(sync).has_table(CONVERSATIONS):
            meta.reflect(sync)
        return meta

    return await conn.run_sync(read)


def _below(meta: MetaData, top: Table) -> list[Table]:
    """The tables that point at `top`, directly or through another, nearest first."""
    found: list[Table] = []
    todo = [top]
    while todo:
        parent = todo.pop(0)
        for table in meta.sorted_tables:
            if table not in found and table is not top and _links(table, parent):
                found.append(table)
                todo.append(table)
    return found


Link = tuple[ColumnElement[object], ColumnElement[object]]


def _links(child: Table, parent: Table) -> list[Link]:
    """(column of `child`, the column of `parent` it points at) for each foreign key."""
    return [(fk.parent, fk.column) for fk in child.foreign_keys if fk.column.table is parent]


async def _erase(
    conn: AsyncConnection,
    meta: MetaData,
    table: Table,
    where: ColumnElement[bool],
    seen: frozenset[str] = frozenset(),
) -> Counter[str]:
    """Deletes `table`'s rows matching `where` and, first, every row pointing at them (the
    database may not cascade: SQLite only does with its foreign keys on)."""
    removed: Counter[str] = Counter()
    seen = seen | {table.name}
    for child in meta.sorted_tables:
        if child.name in seen:
            continue
        for col, ref in _links(child, table):
            chosen = col.in_(select(ref).where(where).scalar_subquery())
            removed.update(await _erase(conn, meta, child, chosen, seen))
    if table.name == "turns" and "feedback" in table.c:
        given = select(func.count()).where(where, table.c.feedback.is_not(None))
        removed[FEEDBACK] += int((await conn.execute(given)).scalar_one())
    done = await conn.execute(delete(table).where(where))
    removed[table.name] += int(done.rowcount or 0)
    return removed
