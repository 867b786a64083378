"""`Database.write`: blocking work in one transaction, committed when it returns and rolled
back when it raises, on SQLite's own writer thread (the blocking driver) or on PostgreSQL's
async engine; many turns written at once all land."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.conversations import Said, TurnLog
from core.models import ConversationRef, Sender
from core.sql.db import Database
from core.sql.models import AgentRow, ConversationRow
from core.sql.store import SqlConversations


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        yield database


def agent(name: str) -> AgentRow:
    return AgentRow(name=name, role="agent", password_hash="x", created_at=1.0)


async def agents(db: Database) -> list[str]:
    async with db.session() as s:
        return list((await s.execute(select(AgentRow.name).order_by(AgentRow.name))).scalars())


async def test_work_is_committed_when_it_returns(db: Database) -> None:
    def add(s: Session) -> str:
        s.add(agent("ann"))
        s.flush()
        return threading.current_thread().name

    ran_on = await db.write(add)
    assert await agents(db) == ["ann"]
    if db.dialect == "sqlite":  # off the event loop, on the writer's own thread
        assert ran_on.startswith("sqlite-writer") and ran_on != threading.current_thread().name


async def test_work_that_raises_leaves_nothing(db: Database) -> None:
    def half(s: Session) -> None:
        s.add(agent("bob"))
        s.flush()
        raise RuntimeError("the second half failed")

    with pytest.raises(RuntimeError, match="second half"):
        await db.write(half)
    assert await agents(db) == []
    await db.write(lambda s: s.add(agent("cy")))  # the writer goes on after a failure
    assert await agents(db) == ["cy"]


async def test_many_turns_at_once_all_land(db: Database) -> None:
    store = SqlConversations(db)

    def turn(n: int) -> TurnLog:
        said = [Said(f"e{n}", f"hello {n}", 1000.0 + n)]
        replies = [Said(f"e{n}:0", "hi", 0.0), Said(f"e{n}:1", "how can I help?", 0.0)]
        ref = ConversationRef(channel="webchat", chat_id=f"c{n % 7}")
        return TurnLog(
            ref, Sender(id=f"c{n % 7}"), said, replies, "greet", 0.9, {}, False, None, None
        )

    written = await asyncio.gather(*(store.record_turn(turn(n)) for n in range(40)))
    assert all(w.new_messages == 3 for w in written)
    async with db.session() as s:
        convs = await s.scalar(select(func.count()).select_from(ConversationRow))
    assert convs == 7
    for conv in {w.conversation.id for w in written}:
        assert len(await store.messages(conv)) == 3 * len(
            [w for w in written if w.conversation.id == conv]
        )


async def test_the_writer_stops_with_the_database_and_starts_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'conversations.db'}"
    for name in ("dee", "eve"):
        async with Database(url) as db:
            await db.write(lambda s, name=name: s.add(agent(name)))  # type: ignore[misc]
        assert not [t for t in threading.enumerate() if t.name.startswith("sqlite-writer")]
    async with Database(url) as db:
        assert await agents(db) == ["dee", "eve"]
