"""The engine: ordering, parallelism, backlog as one turn, retries, dead letters, crash replay,
graceful stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.engine import Engine, EngineSettings
from core.errors import RetryAfter, SendRefused, StoreUnavailable
from core.metrics import Metrics
from core.models import Button, ConversationRef, Inbound, Sender
from core.outbox import Outbox
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.session import Session
from core.store import MemorySentLog, MemoryStore
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel


def msg(chat: str, text: str, event: str | None = None, payload: str | None = None) -> Inbound:
    return Inbound(
        event_id=event or f"{chat}-{text}-{time.monotonic_ns()}",
        conversation=ConversationRef(channel="test", chat_id=chat),
        sender=Sender(id=chat),
        text=text,
        payload=payload,
    )


class Rig:
    def __init__(self, tmp: Path, *, delay: float = 0.0, concurrency: int = 4, **cfg: float):
        self.queue = MemoryQueue(spill_path=tmp / "spill.jsonl")
        self.store = MemoryStore(ttl=600)
        self.channel = RecordingChannel()
        self.metrics = Metrics()
        self.nlu = KeywordNlu()
        self.dialogue = EchoDialogue(delay=delay)
        self.outbox = Outbox(
            {"test": self.channel}, MemorySentLog(), MemoryRateLimiter(), self.metrics, backoff=0.01
        )
        self.engine = Engine(
            queue=self.queue,
            store=self.store,
            nlu=self.nlu,
            dialogue=self.dialogue,
            outbox=self.outbox,
            metrics=self.metrics,
            settings=EngineSettings(concurrency=concurrency, retry_backoff=0.01, **cfg),  # type: ignore[arg-type]
        )

    async def send_all(self, items: list[Inbound]) -> None:
        waits = [self.engine.expect(i) for i in items]
        for i in items:
            assert await self.queue.put(i)
        await asyncio.wait_for(asyncio.gather(*waits), 10)


async def until(cond: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll `cond` until true (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


@pytest.fixture
async def rig(tmp_path: Path):
    r = Rig(tmp_path)
    await r.queue.start()
    await r.engine.start()
    yield r
    await r.engine.stop(2)


async def test_one_conversation_in_order_and_state_kept(rig: Rig) -> None:
    for n in range(5):
        await rig.send_all([msg("a", f"m{n}")])
    assert rig.channel.texts() == [f"#{n + 1} m{n}" for n in range(5)]
    session = await rig.store.load("test:a")
    assert session is not None and session.slots["turns"] == 5
    assert [t.user for t in session.history] == [f"m{n}" for n in range(5)]
    assert await rig.queue.depth() == 0


async def test_backlog_of_one_conversation_is_one_turn(tmp_path: Path) -> None:
    r = Rig(tmp_path, delay=0.2)
    await r.engine.start()
    first = msg("a", "first")
    wait_first = r.engine.expect(first)
    await r.queue.put(first)
    await until(lambda: r.nlu.calls == ["first"], "the first turn")  # running now, for 0.2 s
    rest = [msg("a", t) for t in ("where", "is", "my order")]
    await r.send_all(rest)
    await wait_first
    await r.engine.stop(2)
    assert r.channel.texts() == ["#1 first", "#2 where\nis\nmy order"]


async def test_every_event_of_a_backlog_is_seen_before_the_turn(tmp_path: Path) -> None:
    """Two button presses read as one turn: both spinners must stop, not only the last."""
    r = Rig(tmp_path)
    seen: list[str] = []

    async def before_turn(inbound: Inbound) -> None:
        seen.append(inbound.event_id)

    r.channel.before_turn = before_turn  # type: ignore[method-assign]
    items = [msg("a", "Track", "p1", "/order_status"), msg("a", "Help", "p2", "/help")]
    waits = [r.engine.expect(i) for i in items]
    for i in items:
        await r.queue.put(i)
    await r.engine.start()
    await asyncio.wait_for(asyncio.gather(*waits), 10)
    await r.engine.stop(2)
    assert len(r.channel.sent) == 1
    assert seen == ["p1", "p2"]


async def test_conversations_run_in_parallel_within_the_bound(tmp_path: Path) -> None:
    r = Rig(tmp_path, delay=0.3, concurrency=4)
    await r.engine.start()
    t0 = time.monotonic()
    await r.send_all([msg(f"c{i}", "hi") for i in range(8)])
    elapsed = time.monotonic() - t0
    await r.engine.stop(2)
    assert len(r.channel.sent) == 8
    # 8 conversations of 0.3 s each, 4 at a time: two waves, not eight turns in a row.
    assert 0.55 < elapsed < 2.0


async def test_duplicate_event_is_queued_once(rig: Rig) -> None:
    a = msg("a", "hi", event="same")
    handled = rig.engine.expect(a)
    assert await rig.queue.put(a)
    assert not await rig.queue.put(a.model_copy())
    await asyncio.wait_for(handled, 10)
    # A later event of the same conversation: its turn comes after any other of that
    # conversation, so an answer to the duplicate would be out by then (and this one #3).
    await rig.send_all([msg("a", "sentinel")])
    assert rig.channel.texts() == ["#1 hi", "#2 sentinel"]


async def test_typed_number_maps_to_offered_button(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.dialogue.buttons = (
        Button(label="Track order", payload="/order_status"),
        Button(label="Refund", payload="/refund"),
    )
    await r.engine.start()
    await r.send_all([msg("a", "hi")])
    await r.send_all([msg("a", "2")])
    await r.send_all([msg("a", "track ORDER")])
    await r.engine.stop(2)
    assert r.channel.texts() == ["#1 hi", "#2 /refund", "#3 /order_status"]
    assert r.nlu.calls == ["hi"]  # button choices skip the intent model


async def test_failing_turn_is_retried_then_dead_lettered_with_an_apology(rig: Rig) -> None:
    await rig.send_all([msg("a", "boom")])
    assert len(rig.nlu.calls) == 3  # max_attempts
    assert [d.inbound.text for d in rig.queue.dead] == ["boom"]
    assert rig.channel.texts() == [EngineSettings().failure_text]
    await rig.send_all([msg("a", "hi again")])  # the conversation goes on
    assert rig.channel.texts()[-1] == "#1 hi again"


async def test_send_retried_after_platform_backoff_and_not_duplicated(rig: Rig) -> None:
    rig.channel.fail_next = [RetryAfter(0.05, "429")]
    await rig.send_all([msg("a", "hi")])
    assert rig.channel.texts() == ["#1 hi"]
    assert len(rig.dialogue.seen) == 1


async def test_refused_send_is_dead_lettered_without_running_the_turn_again(rig: Rig) -> None:
    rig.channel.fail_next = [SendRefused("chat not found")]
    await rig.send_all([msg("a", "hi")])
    assert len(rig.dialogue.seen) == 1
    assert len(rig.queue.dead) == 1 and "chat not found" in rig.queue.dead[0].error


async def test_turn_taken_over_after_a_crash_resends_instead_of_rerunning(tmp_path: Path) -> None:
    """A worker saved the turn but died before sending: whoever takes the entry over sends the
    saved replies once, and the dialogue does not run twice."""
    r = Rig(tmp_path)
    first = msg("a", "hi")
    await r.queue.put(first)
    [delivery] = await r.queue.take(10, 0.1)
    # The worker that died: it computed and saved the turn, then sent nothing and acked nothing.
    turns = r.engine.turns
    session = Session.new(first.conversation)
    inbound, nlu = await turns.understand(session, [delivery])
    outcome = await turns.decide(session, inbound, nlu)
    await turns.record(session, [delivery], inbound, nlu, outcome)
    assert r.channel.sent == [] and len(r.dialogue.seen) == 1
    assert await r.queue.depth() == 1
    # Another worker takes the same entry over: it only sends.
    await turns.run([delivery])
    assert r.channel.texts() == ["#1 hi"]
    assert len(r.dialogue.seen) == 1
    assert await r.queue.depth() == 0
    await turns.run([delivery])  # delivered yet again: nothing more goes out
    assert r.channel.texts() == ["#1 hi"]


async def test_stop_finishes_in_flight_turns_and_spills_the_rest(tmp_path: Path) -> None:
    r = Rig(tmp_path, delay=0.3, concurrency=1, prefetch=1)
    await r.queue.start()
    await r.engine.start()
    items = [msg(f"c{i}", "hi") for i in range(4)]
    for i in items:
        await r.queue.put(i)
    await until(lambda: r.nlu.calls == ["hi"], "c0's turn")  # c0 is in flight (one at a time)
    await r.engine.stop(5)
    await r.queue.close()
    assert r.channel.texts("c0") == ["#1 hi"]
    spilled = (tmp_path / "spill.jsonl").read_text().splitlines()
    answered = {m.conversation.chat_id for m in r.channel.sent}
    assert len(spilled) + len(answered) == 4  # nothing lost

    again = Rig(tmp_path)
    await again.queue.start()
    assert not (tmp_path / "spill.jsonl").exists()
    assert await again.queue.depth() == len(spilled)
    await again.engine.start()
    deadline = time.monotonic() + 5
    while await again.queue.depth() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await again.engine.stop(2)
    assert answered | {m.conversation.chat_id for m in again.channel.sent} == {
        f"c{i}" for i in range(4)
    }


async def test_store_outage_waits_without_using_up_attempts(tmp_path: Path) -> None:
    r = Rig(tmp_path, max_attempts=1)
    real_load = r.store.load
    failures = [StoreUnavailable("connection refused")] * 3

    async def flaky_load(key: str) -> Session | None:
        if failures:
            raise failures.pop()
        return await real_load(key)

    r.store.load = flaky_load  # type: ignore[method-assign]
    await r.engine.start()
    await r.send_all([msg("a", "hi")])
    await r.engine.stop(2)
    assert r.channel.texts() == ["#1 hi"]  # answered once, not apologised for
    assert r.queue.dead == []
    assert 'gateway_errors_total{stage="backend"} 3.0' in r.metrics.render().decode()
