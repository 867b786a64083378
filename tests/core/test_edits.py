"""Edits and deletes through the turn runner: an edit made before the answer replaces the
message (one answer, to the edited text); a later edit and every delete are recorded (session
history, metrics) and not answered; the flows' rule (`edits`) chooses otherwise; an edit is a
queue entry of its own, and its redelivery is dropped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.backlog import EditPolicy, settle_edits
from core.engine import Engine, EngineSettings
from core.metrics import Metrics
from core.models import ConversationRef, Inbound, InboundKind, Sender
from core.outbox import Outbox
from core.ports import EditRule
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.store import MemorySentLog, MemoryStore
from core.turn import TurnRunner, TurnSettings
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel

CONV = ConversationRef(channel="test", chat_id="a")


def said(text: str, mid: str) -> Inbound:
    return Inbound(
        event_id=f"m{mid}-{time.monotonic_ns()}",
        conversation=CONV,
        sender=Sender(id="a"),
        text=text,
        message_id=mid,
    )


def change(kind: InboundKind, mid: str, text: str = "") -> Inbound:
    return Inbound(
        event_id=f"{kind}{mid}-{time.monotonic_ns()}",
        conversation=CONV,
        sender=Sender(id="a"),
        text=text,
        kind=kind,
        message_id=mid,
        target_id=mid,
    )


class RuledDialogue(EchoDialogue):
    """An echo with an edit rule, as the flow runner has one from the flows."""

    def __init__(self, edits: EditPolicy) -> None:
        super().__init__()
        self._edits = edits

    @property
    def edits(self) -> EditPolicy:
        return self._edits


class Rig:
    def __init__(self, tmp: Path, dialogue: EchoDialogue | None = None) -> None:
        self.queue = MemoryQueue(spill_path=tmp / "spill.jsonl")
        self.store = MemoryStore(ttl=600)
        self.channel = RecordingChannel()
        self.metrics = Metrics()
        self.nlu = KeywordNlu()
        self.dialogue = dialogue or EchoDialogue()
        self.outbox = Outbox(
            {"test": self.channel}, MemorySentLog(), MemoryRateLimiter(), self.metrics, backoff=0.01
        )
        self.turns = TurnRunner(
            queue=self.queue,
            store=self.store,
            nlu=self.nlu,
            dialogue=self.dialogue,
            outbox=self.outbox,
            metrics=self.metrics,
            settings=TurnSettings(retry_backoff=0.01),
        )

    async def turn(self, *items: Inbound) -> None:
        """One turn of `items` read together, as a backlog."""
        for i in items:
            assert await self.queue.put(i)
        await self.turns.run(await self.queue.take(10, 0.1))

    def counted(self, kind: str, fate: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "gateway_edits_total", {"channel": "test", "kind": kind, "fate": fate}
        )
        return value or 0.0


async def test_an_edit_before_the_answer_replaces_the_message(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    await r.turn(said("where is my ordr", "1"), change("edit", "1", "where is my order A1B2C3"))
    assert r.channel.texts() == ["#1 where is my order A1B2C3"]
    assert r.nlu.calls == ["where is my order A1B2C3"]  # the superseded text never read
    session = await r.store.load(CONV.key)
    assert session is not None
    assert [(t.kind, t.user) for t in session.history] == [
        ("edit", "where is my order A1B2C3"),
        ("message", "where is my order A1B2C3"),
    ]
    assert await r.queue.depth() == 0
    assert r.counted("edit", "replaced") == 1


async def test_only_the_edited_message_of_a_backlog_changes(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    await r.turn(
        said("hello", "1"),
        said("my order is A1B2C4", "2"),
        change("edit", "2", "my order is A1B2C3"),
        change("edit", "2", "my order is A1B2C5"),
    )
    assert r.channel.texts() == ["#1 hello\nmy order is A1B2C5"]  # the last edit wins


async def test_a_later_edit_and_a_delete_are_recorded_and_not_answered(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    await r.turn(said("hi", "1"))
    await r.turn(change("edit", "1", "hi there"))
    await r.turn(change("delete", "1"))
    await r.turn(said("next", "2"))
    # The turns ran in order: the third answer would sit between the two if one was answered.
    assert r.channel.texts() == ["#1 hi", "#2 next"]
    assert await r.queue.depth() == 0
    session = await r.store.load(CONV.key)
    assert session is not None
    assert [(t.kind, t.user, t.target, t.bot) for t in session.history] == [
        ("message", "hi", None, ["#1 hi"]),
        ("edit", "hi there", "1", []),
        ("delete", "", "1", []),
        ("message", "next", None, ["#2 next"]),
    ]
    assert r.counted("edit", "recorded") == 1 and r.counted("delete", "recorded") == 1


async def test_a_message_deleted_before_the_answer_is_not_answered(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    await r.turn(said("refund my order", "1"), said("hi", "2"), change("delete", "1"))
    assert r.channel.texts() == ["#1 hi"]
    await r.turn(said("oops", "3"), change("delete", "3"))
    assert r.channel.texts() == ["#1 hi"] and r.dialogue.seen == [("test:a", "hi", None)]
    assert r.counted("delete", "withdrawn") == 2
    assert await r.queue.depth() == 0


@pytest.mark.parametrize(
    ("rule", "answers", "fate"),
    [
        ("ignore", ["#1 hi"], "recorded"),
        ("as_new", ["#1 hi\nhi there"], "as_new"),
        ("replace_unanswered", ["#1 hi there"], "replaced"),
    ],
)
async def test_the_dialogue_rule_decides(
    tmp_path: Path, rule: EditPolicy, answers: list[str], fate: str
) -> None:
    dialogue = RuledDialogue(rule)
    assert isinstance(dialogue, EditRule)
    r = Rig(tmp_path, dialogue)
    await r.turn(said("hi", "1"), change("edit", "1", "hi there"))
    assert r.channel.texts() == answers
    assert r.counted("edit", fate) == 1


async def test_as_new_answers_a_late_edit_and_never_a_delete(tmp_path: Path) -> None:
    r = Rig(tmp_path, RuledDialogue("as_new"))
    await r.turn(said("hi", "1"))
    await r.turn(change("edit", "1", "hello"))
    await r.turn(change("delete", "1"))
    await r.turn(said("next", "2"))
    assert r.channel.texts() == ["#1 hi", "#2 hello", "#3 next"]


async def test_an_edit_is_its_own_entry_and_its_redelivery_is_dropped(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    original = said("hi", "1")
    edit = change("edit", "1", "hi there")
    assert edit.dedupe_key != original.dedupe_key
    assert await r.queue.put(original) and await r.queue.put(edit)
    assert not await r.queue.put(edit.model_copy())  # the platform's retry
    assert await r.queue.depth() == 2


def test_settle_keeps_order_and_identity() -> None:
    a, b = said("a", "1"), said("b", "2")
    settled = settle_edits([a, change("edit", "1", "A"), b], "replace_unanswered")
    assert [(s.inbound.text if s.inbound else None, s.fate) for s in settled] == [
        ("A", "answer"),
        (None, "replaced"),
        ("b", "answer"),
    ]
    edited = settled[0].inbound
    assert edited is not None and edited.event_id == a.event_id and edited.kind == "message"


async def test_an_edit_that_piles_up_behind_a_busy_turn_replaces_its_message(
    tmp_path: Path,
) -> None:
    """Through the engine: while the conversation's previous turn runs, the customer writes
    and corrects a message; the next turn answers the corrected text once."""
    r = Rig(tmp_path, EchoDialogue(delay=0.3))
    engine = Engine(
        queue=r.queue,
        store=r.store,
        nlu=r.nlu,
        dialogue=r.dialogue,
        outbox=r.outbox,
        metrics=r.metrics,
        settings=EngineSettings(retry_backoff=0.01),
    )
    await engine.start()
    try:
        first = said("hi", "1")
        done = engine.expect(first)
        await r.queue.put(first)
        deadline = time.monotonic() + 10
        while r.nlu.calls != ["hi"]:  # the first turn is running now, for 0.3 s
            assert time.monotonic() < deadline, "the first turn never started"
            await asyncio.sleep(0.005)
        typo, fix = said("track A1B2C4", "2"), change("edit", "2", "track A1B2C3")
        waits = [engine.expect(i) for i in (typo, fix)]
        assert await r.queue.put(typo) and await r.queue.put(fix)
        await asyncio.wait_for(asyncio.gather(done, *waits), 10)
    finally:
        await engine.stop(2)
    assert r.channel.texts() == ["#1 hi", "#2 track A1B2C3"]
