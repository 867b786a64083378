"""Erasure and retention in the conversation store, on SQLite and a real PostgreSQL: one
customer's conversations go with their messages, turns, feedback, handoffs, notes and a table
added later that points at their turns; another customer's stay; records past the retention
period go, newer ones stay."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from core.conversations import Said, TurnFact, TurnLog
from core.forget import Customer, Erasure
from core.handoff import State
from core.models import ConversationRef, Sender
from core.sql import forget
from core.sql.agents import SqlAgents
from core.sql.db import Database
from core.sql.store import SqlConversations

ANN = Sender(id="U-ANN", name="Ann Lee")
BEN = Sender(id="U-BEN", name="Ben")
REVIEWS = """CREATE TABLE review_items (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL REFERENCES turns (id),
    label VARCHAR(64) NOT NULL
)"""


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        yield database


def turn(who: Sender, n: int, at: float, **kw: object) -> TurnLog:
    key = f"{who.id}-ev{n}"
    fact = TurnFact(key, at, f"words {who.id} {n}", "greet", 0.9, [("greet", 0.9)], "answered",
                    None, None, 0.01, asked_feedback=True)  # fmt: skip
    return TurnLog(
        conversation=ConversationRef(channel="telegram", chat_id=who.id),
        customer=who,
        said=[Said(key, f"words {who.id} {n}", at)],
        replies=[Said(f"{key}:0", "reply", at)],
        intent="greet",
        confidence=0.9,
        slots={},
        handoff=False,
        handoff_queue=None,
        handoff_at=None,
        turn=fact,
        **kw,  # type: ignore[arg-type]
    )


async def two_customers(db: Database) -> tuple[int, int]:
    store, agents = SqlConversations(db), SqlAgents(db)
    now = time.time()
    ann = (await store.record_turn(turn(ANN, 1, now))).conversation.id
    await store.record_turn(turn(ANN, 2, now, feedback=("down", "U-ANN-ev1")))
    ben = (await store.record_turn(turn(BEN, 1, now))).conversation.id
    agent = await agents.add("zoe", "agent", "pw-zoe-123")
    for conv in (ann, ben):
        await store.move(conv, State.WAITING, actor="bot")
        await store.add_note(conv, agent.id, "called them back")
    async with db.engine.begin() as conn:
        await conn.execute(text(REVIEWS))
        await conn.execute(
            text("INSERT INTO review_items (id, turn_id, label) SELECT id, id, 'right' FROM turns")
        )
    return ann, ben


async def test_forget_erases_one_customer_and_counts_each_place(db: Database) -> None:
    ann, ben = await two_customers(db)
    erasure = Erasure()
    found = await forget.forget(db, Customer("telegram", "U-ANN"), erasure)

    assert found.conversations == ["telegram:U-ANN"]
    assert sorted(found.events) == ["U-ANN-ev1", "U-ANN-ev2"]
    assert dict(+erasure.removed) == {
        "conversations": 1,
        "messages": 4,
        "turns": 2,
        "feedback": 1,
        "handoffs": 1,
        "notes": 1,
        "review_items": 2,
    }
    store = SqlConversations(db)
    assert await store.get(ann) is None and await store.get(ben) is not None
    assert len(await store.messages(ben)) == 2 and len(await store.turns(ben)) == 1
    async with db.engine.connect() as conn:
        for table in ("messages", "turns", "notes", "handoffs", "review_items"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            assert "U-ANN" not in repr(rows), (table, rows)
        assert (await conn.execute(text("SELECT count(*) FROM review_items"))).scalar() == 1

    again = Erasure()
    assert await forget.forget(db, Customer("telegram", "U-ANN"), again) == forget.Found()
    assert again.report() == "nothing was found"


async def test_retention_deletes_old_conversations_and_old_rows(db: Database) -> None:
    ann, ben = await two_customers(db)
    long_ago = time.time() - 40 * 86400
    async with db.engine.begin() as conn:
        # Ann's conversation was last touched long ago; Ben's has one old line among new ones.
        await conn.execute(
            text("UPDATE conversations SET updated_at = :t WHERE id = :id"),
            {"t": long_ago, "id": ann},
        )
        await conn.execute(
            text("UPDATE messages SET at = :t WHERE conversation_id = :id AND direction = 'out'"),
            {"t": long_ago, "id": ben},
        )
    removed = await forget.expire(db, time.time() - 30 * 86400)

    assert removed["conversations"] == 1 and removed["review_items"] == 2
    assert removed["messages"] == 4 + 1
    store = SqlConversations(db)
    assert await store.get(ann) is None
    assert [m.direction for m in await store.messages(ben)] == ["in"]
    assert len(await store.turns(ben)) == 1 and len(await store.notes(ben)) == 1
    assert await forget.expire(db, time.time() - 30 * 86400) == {}


async def test_a_database_never_migrated_keeps_nobody(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", migrate=False) as empty:
        erasure = Erasure()
        assert await forget.forget(empty, Customer("telegram", "U-ANN"), erasure) == forget.Found()
        assert erasure.report() == "nothing was found"
        assert await forget.expire(empty, time.time()) == {}
