"""The conversation store against SQLite and a real PostgreSQL: migrations, a turn written twice
is written once, the handoff's transitions, notes, search, agents and their sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from core.conversations import Said, Search, TurnFact, TurnLog
from core.errors import AgentExists, HandoffError, HeldByOther, NotWithPeople
from core.handoff import State
from core.models import ConversationRef, Sender
from core.session import FailedAction
from core.sql.agents import SqlAgents
from core.sql.db import Database, database_url
from core.sql.store import SqlConversations

REF = ConversationRef(channel="telegram", chat_id="42")
ANN = Sender(id="42", name="Ann <b>Lee</b>")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        yield database


def turn(
    n: int, *, handoff: bool = False, at: float | None = None, intent: str = "greet"
) -> TurnLog:
    return TurnLog(
        conversation=REF,
        customer=ANN,
        said=[Said(f"ev{n}", f"message {n}", 1000.0 + n)],
        replies=[Said(f"ev{n}:0", f"reply {n}", 0)] if not handoff else [],
        intent=intent,
        confidence=0.9,
        slots={"order_id": "A1B2C3"},
        handoff=handoff,
        handoff_queue="support" if handoff else None,
        handoff_at=at,
    )


async def test_migrations_reach_head_and_go_back(db: Database) -> None:
    assert await db.revision() == "0004"
    await db.downgrade("base")
    assert await db.revision() is None
    await db.upgrade()
    assert await db.revision() == "0004"


async def test_a_turn_written_twice_is_one_turn(db: Database) -> None:
    store = SqlConversations(db)
    first = await store.record_turn(turn(1))
    again = await store.record_turn(turn(1))
    assert first.new_messages == 2 and again.new_messages == 0
    msgs = await store.messages(first.conversation.id)
    assert [(m.direction, m.author, m.text) for m in msgs] == [
        ("in", "customer", "message 1"),
        ("out", "bot", "reply 1"),
    ]
    conv = first.conversation
    assert (conv.channel, conv.customer_name, conv.state) == (
        "telegram",
        "Ann <b>Lee</b>",
        State.BOT,
    )
    assert conv.slots == {"order_id": "A1B2C3"} and conv.intent == "greet"


async def test_the_failed_actions_of_the_last_turn_reach_the_card(db: Database) -> None:
    store = SqlConversations(db)
    down = FailedAction(at=1000.5, flow="orders", action="orders.lookup", error="HTTP 503")
    written = await store.record_turn(replace(turn(1), failed_actions=[down]))
    assert written.conversation.failed_actions == (down,)
    conv = await store.get(written.conversation.id)
    assert conv is not None and conv.failed_actions == (down,)
    later = await store.record_turn(turn(2))  # the session no longer has them: nor has the card
    assert later.conversation.failed_actions == ()


async def test_handoff_is_requested_once_and_messages_wait(db: Database) -> None:
    store = SqlConversations(db)
    await store.record_turn(turn(1))
    asked = await store.record_turn(turn(2, handoff=True, at=2000.0, intent="human"))
    assert asked.moved is not None and asked.moved.to_state == State.WAITING
    # The same turn run again, and later turns while waiting: no second request.
    again = await store.record_turn(turn(2, handoff=True, at=2000.0, intent="human"))
    later = await store.record_turn(turn(3, handoff=True, at=2000.0))
    assert again.moved is None and later.moved is None and later.new_messages == 1
    queue = await store.queue()
    assert [c.key for c in queue] == [REF.key] and queue[0].state == State.WAITING
    assert queue[0].waiting_since is not None
    trail = await store.transitions(asked.conversation.id)
    assert [(t.from_state, t.to_state, t.actor, t.reason) for t in trail] == [
        (State.BOT, State.WAITING, "bot", "support")
    ]


async def test_claim_assign_resolve_and_who_holds(db: Database) -> None:
    store, agents = SqlConversations(db), SqlAgents(db)
    ann = await agents.add("ann", "agent", "pw-ann-123")
    bob = await agents.add("bob", "agent", "pw-bob-123")
    cid = (await store.record_turn(turn(1, handoff=True, at=5.0))).conversation.id
    t = await store.move(cid, State.AGENT, actor="agent:ann", agent_id=ann.id, holder_id=ann.id)
    assert t is not None and t.to_state == State.AGENT
    # The same claim again changes nothing; bob cannot take it without an assignment.
    assert (
        await store.move(cid, State.AGENT, actor="agent:ann", agent_id=ann.id, holder_id=ann.id)
        is None
    )
    with pytest.raises(HeldByOther, match="ann has this conversation"):
        await store.move(cid, State.AGENT, actor="agent:bob", agent_id=bob.id, holder_id=bob.id)
    await store.move(
        cid, State.AGENT, actor="agent:ann", agent_id=ann.id, holder_id=bob.id, take_over=True
    )
    conv = await store.get(cid)
    assert conv is not None and conv.holder == "bob"
    assert (await store.move(cid, State.RESOLVED, actor="agent:bob", agent_id=bob.id)) is not None
    assert (await store.move(cid, State.RESOLVED, actor="agent:bob", agent_id=bob.id)) is None
    with pytest.raises(NotWithPeople):
        await store.move(cid, State.AGENT, actor="agent:ann", agent_id=ann.id, holder_id=ann.id)
    assert await store.queue() == []
    # A new request after the resolution is a new wait.
    again = await store.record_turn(turn(2, handoff=True, at=9.0))
    assert again.moved is not None and again.moved.from_state == State.RESOLVED
    states = [(t.from_state.value, t.to_state.value) for t in await store.transitions(cid)]
    assert states == [
        ("bot", "waiting"),
        ("waiting", "agent"),
        ("agent", "agent"),
        ("agent", "resolved"),
        ("resolved", "waiting"),
    ]


async def test_customer_back_to_bot_and_illegal_moves(db: Database) -> None:
    store = SqlConversations(db)
    cid = (await store.record_turn(turn(1, handoff=True, at=5.0))).conversation.id
    back = await store.record_turn(turn(2, handoff=False))
    assert (
        back.moved is not None
        and back.moved.to_state == State.BOT
        and back.moved.actor == "customer"
    )
    with pytest.raises(HandoffError):
        await store.move(cid, State.AGENT, actor="agent:x", holder_id=None)
    with pytest.raises(LookupError):
        await store.move(999_999, State.BOT, actor="agent:x")


async def test_agent_messages_notes_and_failed_sends(db: Database) -> None:
    store, agents = SqlConversations(db), SqlAgents(db)
    ann = await agents.add("ann", "agent", "pw")
    cid = (await store.record_turn(turn(1, handoff=True, at=5.0))).conversation.id
    msg = await store.add_message(
        cid,
        key="agent:1",
        direction="out",
        author="agent",
        text="<script>x</script>",
        agent_id=ann.id,
        status="sending",
    )
    await store.set_status(msg.id, "failed", "bot was blocked by the user")
    note = await store.add_note(cid, ann.id, "VIP <i>customer</i>")
    last = (await store.messages(cid))[-1]
    assert (last.agent, last.text, last.status, last.error) == (
        "ann",
        "<script>x</script>",
        "failed",
        "bot was blocked by the user",
    )
    assert [(n.agent, n.text) for n in await store.notes(cid)] == [("ann", "VIP <i>customer</i>")]
    assert note.agent == "ann"


async def test_search_by_customer_channel_intent_and_date(db: Database) -> None:
    store = SqlConversations(db)
    await store.record_turn(turn(1, intent="order_status"))
    other = TurnLog(
        conversation=ConversationRef(channel="webchat", chat_id="w-1"),
        customer=Sender(id="w-1", name="Zoë 100%_sure"),
        said=[Said("w1", "hi", 1.0)],
        replies=[],
        intent="refund",
        confidence=0.5,
        slots={},
        handoff=False,
        handoff_queue=None,
        handoff_at=None,
    )
    await store.record_turn(other)
    keys = lambda found: sorted(c.key for c in found)  # noqa: E731
    assert keys(await store.search(Search(text="ann"))) == ["telegram:42"]
    assert keys(await store.search(Search(text="100%_"))) == ["webchat:w-1"]
    assert keys(await store.search(Search(text="0%s"))) == []
    assert keys(await store.search(Search(channel="webchat"))) == ["webchat:w-1"]
    assert keys(await store.search(Search(intent="order_status"))) == ["telegram:42"]
    assert keys(await store.search(Search(since=0))) == ["telegram:42", "webchat:w-1"]
    assert keys(await store.search(Search(until=1.0))) == []


async def test_agents_passwords_sessions_and_presence(db: Database) -> None:
    agents = SqlAgents(db)
    ann = await agents.add("ann", "admin", "correct horse")
    with pytest.raises(AgentExists):
        await agents.add("ann", "agent", "x")
    assert (await agents.verify("ann", "correct horse")) == ann
    assert await agents.verify("ann", "wrong") is None
    assert await agents.verify("nobody", "correct horse") is None
    secret, csrf = await agents.start_session(ann.id, "cookie", ttl=60)
    found = await agents.session(secret)
    assert found is not None and found[0].name == "ann" and found[1] == csrf
    assert await agents.session(secret + "x") is None
    expired, _ = await agents.start_session(ann.id, "cookie", ttl=-1)
    assert await agents.session(expired) is None
    await agents.end_session(secret)
    assert await agents.session(secret) is None
    assert await agents.online(60) == 0
    await agents.seen(ann.id)
    assert await agents.online(60) == 1


async def test_turns_from_two_writers_at_once(db: Database) -> None:
    """Two workers recording the first turns of one conversation together make one row."""
    a, b = SqlConversations(db), SqlConversations(db)
    await asyncio.gather(a.record_turn(turn(1)), b.record_turn(turn(2)))
    found = await a.search(Search())
    assert len(found) == 1 and len(await a.messages(found[0].id)) == 4


def test_database_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert database_url(None, tmp_path).endswith("/conversations.db")
    assert database_url("postgresql://u:p@h/db", tmp_path) == "postgresql+asyncpg://u:p@h/db"
    assert database_url("postgres://h/db", tmp_path) == "postgresql+asyncpg://h/db"


def fact(key: str, **kw: Any) -> TurnFact:
    base: dict[str, Any] = {
        "key": key,
        "at": 1000.0,
        "text": "where is [email]'s order",
        "intent": "order_status",
        "confidence": 0.71,
        "ranking": [("order_status", 0.71), ("refund", 0.2), ("greet", 0.05)],
        "outcome": "answered",
        "flow": "order_status",
        "flow_end": "completed",
        "latency": 0.25,
    }
    return TurnFact(**{**base, **kw})


async def test_each_turn_is_kept_once_with_what_the_bot_made_of_it(db: Database) -> None:
    store = SqlConversations(db)
    first = replace(turn(1), turn=fact("ev1"))
    await store.record_turn(first)
    await store.record_turn(first)  # the same turn replayed after a failed delivery
    await store.record_turn(replace(turn(2), turn=fact("ev2", outcome="fallback", flow=None,
                                                       flow_end=None, intent=None,
                                                       confidence=None, ranking=[])))  # fmt: skip
    await store.record_turn(turn(3))  # no turn record: only its messages
    conv = await store.by_key(REF.key)
    assert conv is not None
    kept = await store.turns(conv.id)
    assert [(t.key, t.outcome, t.flow_end) for t in kept] == [
        ("ev1", "answered", "completed"),
        ("ev2", "fallback", None),
    ]
    assert kept[0] == fact("ev1")
    assert kept[1].ranking == [] and kept[1].intent is None


async def test_feedback_lands_on_its_turn_once_and_a_gone_turn_takes_none(db: Database) -> None:
    store = SqlConversations(db)
    await store.record_turn(replace(turn(1), turn=fact("ev1", asked_feedback=True, at=5000.0)))
    assert await store.asked_since(REF.key, 4999.0)
    assert not await store.asked_since(REF.key, 5001.0)
    assert not await store.asked_since("telegram:nobody", 0.0)
    await store.record_turn(replace(turn(2), turn=fact("ev2"), feedback=("down", "ev1")))
    await store.record_turn(replace(turn(3), turn=fact("ev3"), feedback=("up", "ev1")))
    await store.record_turn(replace(turn(4), turn=fact("ev4"), feedback=("up", "gone")))
    conv = await store.by_key(REF.key)
    assert conv is not None
    kept = {t.key: t.feedback for t in await store.turns(conv.id)}
    assert kept == {"ev1": "down", "ev2": None, "ev3": None, "ev4": None}


async def test_turn_stats_read_the_range_asked_for(db: Database) -> None:
    store = SqlConversations(db)
    await store.record_turn(replace(turn(1), turn=fact("ev1", at=100.0)))
    await store.record_turn(replace(turn(2), turn=fact("ev2", at=200.0, outcome="handoff")))
    await store.record_turn(replace(turn(3), turn=fact("ev3", at=300.0)))
    stats = await store.turn_stats(150.0, 300.0)
    assert [(s.channel, s.at, s.outcome, s.intent, s.latency) for s in stats] == [
        ("telegram", 200.0, "handoff", "order_status", 0.25)
    ]
