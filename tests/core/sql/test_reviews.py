"""The review inbox in SQL (SQLite and PostgreSQL): which turns it lists, newest first and
filtered, one label per turn, labels gone with their turn, the counts precision is made of."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete

from core.conversations import Said, TurnFact, TurnLog
from core.models import ConversationRef, Sender
from core.review.inbox import InboxQuery, Label
from core.sql.agents import SqlAgents
from core.sql.db import Database
from core.sql.models import ConversationRow
from core.sql.reviews import SqlReviews
from core.sql.store import SqlConversations


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        yield database


async def turn(
    store: SqlConversations,
    n: int,
    outcome: str,
    confidence: float | None,
    *,
    channel: str = "telegram",
    intent: str | None = "order_status",
    feedback: str | None = None,
) -> None:
    ref = ConversationRef(channel=channel, chat_id=f"c{n}")
    fact = TurnFact(
        f"k{n}",
        1000.0 + n,
        f"text {n}",
        intent,
        confidence,
        [("order_status", 0.5), ("refund", 0.3)],
        outcome,
        None,
        None,
        0.1,
    )
    said = [Said(f"k{n}", f"text {n}", 1000.0 + n)]
    await store.record_turn(
        TurnLog(
            ref, Sender(id=f"c{n}"), said, [], intent, confidence, {}, False, None, None, turn=fact
        )
    )
    if feedback:
        await store.record_turn(
            TurnLog(
                ref,
                Sender(id=f"c{n}"),
                [],
                [],
                intent,
                confidence,
                {},
                False,
                None,
                None,
                feedback=(feedback, f"k{n}"),
            )
        )


async def test_inbox_filters_labels_and_precision(db: Database) -> None:
    store, reviews = SqlConversations(db), SqlReviews(db)
    await turn(store, 1, "answered", 0.95)  # fine: not listed
    await turn(store, 2, "answered", 0.55)  # low confidence
    await turn(store, 3, "clarified", 0.4, channel="webchat")
    await turn(store, 4, "fallback", 0.2, intent=None)
    await turn(store, 5, "handoff", 0.9, intent="human")
    await turn(store, 6, "answered", 0.9, feedback="down")
    q = InboxQuery(below=0.7)
    listed = await reviews.inbox(q)
    assert [i.text for i in listed] == ["text 6", "text 5", "text 4", "text 3", "text 2"]
    by_text = {i.text: i for i in listed}
    assert by_text["text 6"].reasons == ["thumbs_down"]
    assert by_text["text 3"].reasons == ["low_confidence", "clarified"]
    assert by_text["text 2"].ranking == [("order_status", 0.5), ("refund", 0.3)]
    texts = [i.text for i in await reviews.inbox(InboxQuery(reason="low_confidence"))]
    assert texts == ["text 4", "text 3", "text 2"]
    assert [i.text for i in await reviews.inbox(InboxQuery(channel="webchat"))] == ["text 3"]
    assert [i.text for i in await reviews.inbox(InboxQuery(intent="human"))] == ["text 5"]
    window = InboxQuery(since=1002.5, until=1005.5)
    assert [i.text for i in await reviews.inbox(window)] == ["text 5", "text 4", "text 3"]
    assert len(await reviews.inbox(InboxQuery(limit=2))) == 2

    two, three = by_text["text 2"].turn_id, by_text["text 3"].turn_id
    ann = await SqlAgents(db).add("ann", "reviewer", "ann-password")
    await reviews.label(
        Label(two, "relabel", "refund", None, "order_status", "ann", 2000.0), ann.id
    )
    await reviews.label(
        Label(two, "right", "order_status", None, "order_status", "bo", 2001.0), None
    )
    await reviews.label(
        Label(three, "relabel", "refund", None, "order_status", "ann", 2002.0), None
    )
    opened = [i.text for i in await reviews.inbox(q)]
    assert opened == ["text 6", "text 5", "text 4"]
    done = await reviews.inbox(InboxQuery(status="done"))
    assert [(i.text, i.label.kind if i.label else None) for i in done] == [
        ("text 3", "relabel"),
        ("text 2", "right"),
    ]
    assert done[1].label is not None and done[1].label.reviewer == "bo"
    assert sorted(await reviews.judged()) == [
        ("order_status", "relabel", 1),
        ("order_status", "right", 1),
    ]
    item = await reviews.item(two, 0.7)
    assert item is not None and item.label is not None and item.label.kind == "right"
    assert await reviews.item(999_999, 0.7) is None

    # An erased conversation takes its turns' labels with it.
    async with db.session() as s, s.begin():
        await s.execute(delete(ConversationRow).where(ConversationRow.chat_id == "c3"))
    assert await reviews.judged() == [("order_status", "right", 1)]
