"""What the insights and the export read from the store, on SQLite and a real PostgreSQL: a
handoff's reason and whether the customer was already waiting, one channel or all, and the
turns streamed in order in batches, text as stored."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from core.conversations import TurnLog
from core.models import ConversationRef
from core.sql import store as store_module
from core.sql.db import Database
from core.sql.store import SqlConversations
from tests.core.sql.test_store import db, fact, turn

__all__ = ["db"]

WEB = ConversationRef(channel="webchat", chat_id="w1")


async def test_handoff_reasons_and_turns_spent_waiting(db: Database) -> None:
    # A turn is recorded once it is done, after the customer's message came (`at`): the
    # transition it causes is the conversation's first one from then on.
    store = SqlConversations(db)
    start = time.time()

    async def record(log: TurnLog, key: str, **kw: Any) -> None:
        at = time.time()
        await store.record_turn(replace(log, turn=fact(key, at=at, **kw)))

    await record(turn(1), "ev1", confidence=0.93)
    await record(replace(turn(6), conversation=WEB), "w1", outcome="fallback")
    asked = replace(turn(2, handoff=True, at=2000.0, intent="human"), handoff_queue="support")
    await record(asked, "ev2", outcome="handoff")
    await record(turn(3, handoff=True, at=2000.0), "ev3", outcome="handoff")
    await record(turn(4), "ev4")  # back to the bot
    again = replace(turn(5, handoff=True, at=4000.0), handoff_queue="fallback")
    await record(again, "ev5", outcome="handoff")

    stats = sorted(await store.turn_stats(start, time.time() + 1), key=lambda s: s.at)
    assert [(s.channel, s.outcome, s.reason, s.waiting, s.confidence) for s in stats] == [
        ("telegram", "answered", None, False, 0.93),
        ("webchat", "fallback", None, False, 0.71),
        ("telegram", "handoff", "support", False, 0.71),
        ("telegram", "handoff", None, True, 0.71),
        ("telegram", "answered", None, False, 0.71),
        ("telegram", "handoff", "fallback", False, 0.71),
    ]
    only_web = await store.turn_stats(start, time.time() + 1, "webchat")
    assert [(s.channel, s.outcome) for s in only_web] == [("webchat", "fallback")]
    assert await store.turn_stats(start, time.time() + 1, "slack") == []


async def test_turn_records_stream_in_order_in_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_EXPORT_BATCH", 2)
    store = SqlConversations(db)
    for n in (3, 1, 5, 2, 4):
        await store.record_turn(replace(turn(n), turn=fact(f"ev{n}", at=1000.0 + n)))
    await store.record_turn(replace(turn(9), conversation=WEB, turn=fact("w9", at=1002.5)))
    got = [(c, f.key, f.text) async for _, c, f in store.turn_records(1001.0, 1005.0)]
    assert got == [
        ("telegram", "ev1", "where is [email]'s order"),
        ("telegram", "ev2", "where is [email]'s order"),
        ("webchat", "w9", "where is [email]'s order"),
        ("telegram", "ev3", "where is [email]'s order"),
        ("telegram", "ev4", "where is [email]'s order"),
    ]
    web = [f.key async for _, _, f in store.turn_records(0.0, 9999.0, "webchat")]
    assert web == ["w9"]
