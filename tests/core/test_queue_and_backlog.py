"""Dedupe expiry, spill and restore, coalescing a backlog, mapping typed choices."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core.backlog import coalesce, resolve_choice
from core.errors import QueueUnavailable, StoreUnavailable
from core.models import Attachment, Button, ConversationRef, Inbound, Sender
from core.ports import Verdict
from core.queue import MemoryQueue, TtlSet
from core.senderlimit import MemorySenderLimit
from core.sqlite.keys import SqliteKeys


def inbound(text: str, event: str, payload: str | None = None, **kw: object) -> Inbound:
    return Inbound(
        event_id=event,
        conversation=ConversationRef(channel="test", chat_id="a"),
        sender=Sender(id="a"),
        text=text,
        payload=payload,
        **kw,  # type: ignore[arg-type]
    )


def test_ttl_set_remembers_a_key_at_least_ttl_and_forgets_it_by_twice_that() -> None:
    now = [0.0]
    seen = TtlSet(10, clock=lambda: now[0])
    assert seen.add("x")
    assert not seen.add("x")
    for t in (9.9, 10.0, 19.9):
        now[0] = t
        assert "x" in seen, t
    now[0] = 20.0
    assert "x" not in seen
    assert seen.add("x")


def test_ttl_set_keeps_every_key_of_a_steady_stream_for_at_least_ttl() -> None:
    """Keys arriving all the time, each looked for again later: each is found for `ttl` after
    it came and gone `2 * ttl` after; `discard` forgets one at once."""
    now = [0.0]
    seen = TtlSet(10, clock=lambda: now[0])
    added: dict[str, float] = {}
    for step in range(400):
        now[0] = step * 0.25
        key = f"k{step}"
        assert seen.add(key)
        added[key] = now[0]
        for old, at in added.items():
            age = now[0] - at
            if age < 10:
                assert old in seen, (old, age)
            elif age >= 20:
                assert old not in seen, (old, age)
    seen.discard("k399")
    assert "k399" not in seen and seen.add("k399")


def test_ttl_set_forgets_everything_after_a_long_silence() -> None:
    now = [0.0]
    seen = TtlSet(10, clock=lambda: now[0])
    seen.add("a")
    now[0] = 35.0
    assert "a" not in seen
    assert seen.add("b") and "b" in seen
    now[0] = 44.9
    assert "b" in seen


async def test_dedupe_is_per_channel_and_event_id() -> None:
    q = MemoryQueue()
    a = inbound("hi", "1")
    other_channel = a.model_copy(
        update={"conversation": ConversationRef(channel="other", chat_id="a")}
    )
    assert await q.put(a)
    assert not await q.put(inbound("changed text, same event", "1"))
    assert await q.put(other_channel)
    assert await q.depth() == 2


async def test_spill_keeps_order_and_attachment_bytes(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    q = MemoryQueue(spill_path=spill)
    blob = bytes(range(256))
    await q.put(inbound("one", "1", attachments=(Attachment(kind="file", content=blob),)))
    await q.put(inbound("two", "2"))
    await q.put(inbound("three", "3"))
    taken = await q.take(1, 0.1)  # in flight when the process stops: still not acknowledged
    assert [d.inbound.text for d in taken] == ["one"]
    await q.close()
    again = MemoryQueue(spill_path=spill)
    await again.start()
    restored = await again.take(10, 0.1)
    assert [d.inbound.text for d in restored] == ["one", "two", "three"]
    assert restored[0].inbound.attachments[0].content == blob
    assert not spill.exists()


async def test_with_a_journal_the_dedupe_survives_a_restart(tmp_path: Path) -> None:
    """The embedded default: a platform's redelivery (or a replay) after a restart is still a
    duplicate; without the journal the new process took it as new and answered it again."""
    path = tmp_path / "keys.sqlite3"
    q = MemoryQueue(journal=SqliteKeys(path))
    await q.start()
    assert await q.put(inbound("hi", "1"))
    await q.ack(await q.take(1, 0.1))
    await q.close()
    journal = SqliteKeys(path)
    again = MemoryQueue(journal=journal)
    await again.start()
    assert not await again.put(inbound("hi", "1"))
    assert await again.put(inbound("new", "2"))
    await again.close()
    await journal.close()


async def test_the_journal_is_written_in_batches_while_running(tmp_path: Path) -> None:
    """Keys reach the disk without a clean stop (JOURNAL_EVERY), so a crash loses little."""
    journal = SqliteKeys(tmp_path / "keys.sqlite3")
    q = MemoryQueue(journal=journal)
    await q.start()
    for n in range(3):
        await q.put(inbound("hi", str(n)))
    deadline = asyncio.get_running_loop().time() + 5
    while len(await journal.recall()) < 3:
        assert asyncio.get_running_loop().time() < deadline, "the keys never reached the disk"
        await asyncio.sleep(0.05)
    assert sorted(await journal.recall()) == ["test:0", "test:1", "test:2"]
    await q.close()
    await journal.close()


async def test_a_spilled_event_comes_back_though_its_key_is_in_the_journal(tmp_path: Path) -> None:
    path, spill = tmp_path / "keys.sqlite3", tmp_path / "spill.jsonl"
    q = MemoryQueue(journal=SqliteKeys(path), spill_path=spill)
    await q.start()
    await q.put(inbound("not handled before the stop", "1"))
    await q.close()
    again = MemoryQueue(journal=SqliteKeys(path), spill_path=spill)
    await again.start()
    assert [d.inbound.text for d in await again.take(5, 0.1)] == ["not handled before the stop"]
    assert not await again.put(inbound("not handled before the stop", "1"))
    await again.close()


async def test_an_event_that_arrives_after_the_close_is_kept_for_the_next_start(
    tmp_path: Path,
) -> None:
    """A web chat message or webhook still being taken while the process stops: before, it went
    into the closed queue's memory (answered 'queued') and was lost with the process."""
    path, spill = tmp_path / "keys.sqlite3", tmp_path / "spill.jsonl"
    q = MemoryQueue(journal=SqliteKeys(path), spill_path=spill)
    await q.start()
    await q.put(inbound("queued before the stop", "1"))
    await q.close()
    assert await q.put(inbound("arrived while stopping", "2"))
    assert await q.put(inbound("and another", "3"))
    assert not await q.put(inbound("and another", "3")), "a redelivery is still one"
    again = MemoryQueue(journal=SqliteKeys(path), spill_path=spill)
    await again.start()
    assert [d.inbound.text for d in await again.take(5, 0.1)] == [
        "queued before the stop",
        "arrived while stopping",
        "and another",
    ]
    await again.close()


async def test_without_a_spill_file_a_late_event_is_refused_not_dropped() -> None:
    q = MemoryQueue()
    await q.start()
    await q.close()
    with pytest.raises(QueueUnavailable, match="shutting down"):
        await q.put(inbound("too late", "1"))
    with pytest.raises(QueueUnavailable):  # refused, so not remembered as seen either
        await q.put(inbound("too late", "1"))


async def test_a_journal_that_fails_is_logged_and_the_dedupe_in_memory_holds() -> None:
    class Broken:
        async def recall(self) -> list[str]:
            return []

        async def record(self, keys: object, ttl: float) -> None:
            raise StoreUnavailable("disk full")

    q = MemoryQueue(journal=Broken())
    await q.start()
    assert await q.put(inbound("hi", "1"))
    with capture_logs() as logs:
        await q.close()
    assert [e["event"] for e in logs] == ["queue.journal_failed", "queue.dropped_on_close"]
    assert not await q.put(inbound("hi", "1"))


async def test_an_unreadable_spill_line_is_kept_aside_and_the_rest_restored(
    tmp_path: Path,
) -> None:
    spill = tmp_path / "spill.jsonl"
    good = inbound("kept", "1").model_dump_json()
    spill.write_text(good + "\n" + '{"event_id": "2", "text": "my card is 4111"}\n')
    q = MemoryQueue(spill_path=spill)
    with capture_logs() as logs:
        await q.start()
    assert [d.inbound.text for d in await q.take(10, 0.1)] == ["kept"]
    [line] = [e for e in logs if e["event"] == "queue.spill_line_unreadable"]
    assert line["line"] == 2 and "conversation: missing" in line["error"]
    assert "4111" not in str(line)
    assert not spill.exists() and (tmp_path / "spill.jsonl.bad").exists()


async def test_take_waits_for_a_put() -> None:
    import asyncio

    q = MemoryQueue()
    waiter = asyncio.create_task(q.take(5, 2.0))
    await asyncio.sleep(0.05)
    await q.put(inbound("late", "9"))
    got = await asyncio.wait_for(waiter, 1)
    assert [d.inbound.text for d in got] == ["late"]
    assert await q.take(5, 0.05) == []


def test_coalesce_joins_texts_keeps_latest_identity_and_payload() -> None:
    items = [
        inbound("hi", "1"),
        inbound("Track order", "2", payload="/order_status"),
        inbound("  A1B2C3 ", "3", attachments=(Attachment(kind="image", file_id="f"),)),
    ]
    one = coalesce(items)
    assert one.text == "hi\nTrack order\nA1B2C3"
    assert one.payload == "/order_status"
    assert one.event_id == "3"
    assert one.attachments == items[2].attachments
    assert one.meta["batched"] == "3"
    assert coalesce(items[:1]) is items[0]


def test_resolve_choice_by_number_or_label_only_when_offered() -> None:
    offered = [
        Button(label="Yes", payload="/affirm"),
        Button(label="Talk to a person", payload="/human"),
    ]
    assert resolve_choice(offered, inbound("2", "1")).payload == "/human"
    assert resolve_choice(offered, inbound(" 1. ", "1")).payload == "/affirm"
    assert resolve_choice(offered, inbound("talk to a PERSON!", "1")).payload == "/human"
    assert resolve_choice(offered, inbound("3", "1")).payload is None
    assert resolve_choice(offered, inbound("yes please", "1")).payload is None
    assert resolve_choice([], inbound("1", "1")).payload is None
    pressed = inbound("2", "1", payload="/other")
    assert resolve_choice(offered, pressed) is pressed


async def test_undecodable_text_is_kept_writable(tmp_path: Path) -> None:
    """Bytes stdin could not decode arrive as lone surrogates; the event must still spill."""
    q = MemoryQueue(spill_path=tmp_path / "spill.jsonl")
    event = inbound("\udcff\udcfe bad", "1", meta={"subject": "\ud800"})
    assert "\ufffd" in event.text and event.meta["subject"] == "\ufffd"
    await q.put(event)
    await q.close()
    again = MemoryQueue(spill_path=tmp_path / "spill.jsonl")
    await again.start()
    assert [d.inbound.text for d in await again.take(5, 0.1)] == [event.text]


async def test_the_flood_limit_forgets_senders_silent_for_a_window() -> None:
    now = [0.0]
    limit = MemorySenderLimit(limit=2, window=60, clock=lambda: now[0])
    for i in range(1000):  # web chat visitors come and go
        assert await limit.hit(f"webchat:v{i}", f"e{i}") is Verdict.ALLOW
    assert len(limit._hits) == 1000
    now[0] = 61.0
    for n in range(4):
        verdict = await limit.hit("webchat:busy", f"b{n}")
    assert verdict is Verdict.DROP and len(limit._hits) == 1
