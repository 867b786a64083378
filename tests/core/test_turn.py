"""One turn through the turn runner's public steps: replay, understand, decide, record, deliver,
acknowledge; and a session save that loses a race, run again on the fresh state."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from core.errors import StaleSession
from core.metrics import Metrics
from core.models import Button, ConversationRef, Inbound, Sender
from core.outbox import Outbox
from core.ports import Delivery, NluResult, SessionStore, TurnOutcome
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.redis.client import connect
from core.redis.store import RedisStore
from core.session import Session
from core.store import MemorySentLog, MemoryStore
from core.turn import STALE_RETRIES, TurnRunner, TurnSettings
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel

CONV = ConversationRef(channel="test", chat_id="a")


def msg(text: str, payload: str | None = None) -> Inbound:
    return Inbound(
        event_id=f"{text}-{time.monotonic_ns()}",
        conversation=CONV,
        sender=Sender(id="a"),
        text=text,
        payload=payload,
    )


@contextmanager
def logs_from_info() -> Iterator[list[dict[str, Any]]]:
    """The events logged meanwhile, info included whatever level an earlier test configured."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**before)


class Rig:
    def __init__(self, tmp: Path, store: SessionStore | None = None, **cfg: int) -> None:
        self.queue = MemoryQueue(spill_path=tmp / "spill.jsonl")
        self.store = store if store is not None else MemoryStore(ttl=600)
        self.channel = RecordingChannel()
        self.metrics = Metrics()
        self.nlu = KeywordNlu()
        self.dialogue = EchoDialogue(buttons=(Button(label="Refund", payload="/refund"),))
        outbox = Outbox(
            {"test": self.channel}, MemorySentLog(), MemoryRateLimiter(), self.metrics, backoff=0.01
        )
        self.turns = TurnRunner(
            queue=self.queue,
            store=self.store,
            nlu=self.nlu,
            dialogue=self.dialogue,
            outbox=outbox,
            metrics=self.metrics,
            settings=TurnSettings(retry_backoff=0.01, **cfg),  # type: ignore[arg-type]
        )

    async def taken(self, *items: Inbound) -> list[Delivery]:
        for i in items:
            assert await self.queue.put(i)
        return await self.queue.take(10, 0.1)


async def test_a_turn_is_answered_recorded_and_acknowledged(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    batch = await r.taken(msg("hi"))
    await r.turns.run(batch)
    assert r.channel.texts() == ["#1 hi"]
    assert await r.queue.depth() == 0
    session = await r.store.load(CONV.key)
    assert session is not None and session.revision == 1
    assert session.turn_entries == [batch[0].entry_id]
    assert [t.user for t in session.history] == ["hi"] and session.history[0].intent == "greet"
    assert [b.payload for b in session.offered] == ["/refund"]


async def test_understand_reads_a_backlog_as_one_and_a_typed_choice_as_its_button(
    tmp_path: Path,
) -> None:
    r = Rig(tmp_path)
    session = Session.new(CONV)
    inbound, nlu = await r.turns.understand(session, await r.taken(msg("hi"), msg("there")))
    assert inbound.text == "hi\nthere" and nlu.intent == "greet"
    session.offered = [Button(label="Refund", payload="/refund")]
    inbound, nlu = await r.turns.understand(session, await r.taken(msg("1")))
    assert inbound.payload == "/refund" and nlu == NluResult.empty("1")
    assert r.nlu.calls == ["hi\nthere"]  # the choice skipped the model


async def test_record_saves_before_anything_is_delivered_and_replay_sends_it_once(
    tmp_path: Path,
) -> None:
    r = Rig(tmp_path)
    first, second = await r.taken(msg("hi"), msg("more"))
    session = Session.new(CONV)
    inbound, nlu = await r.turns.understand(session, [first])
    outcome = await r.turns.decide(session, inbound, nlu)
    await r.turns.record(session, [first], inbound, nlu, outcome)
    assert r.channel.sent == []
    saved = await r.store.load(CONV.key)
    assert saved is not None and [o.text for o in saved.pending] == ["#1 hi"]

    rest = await r.turns.replay(saved, [first, second])
    assert rest == [second]  # only what was not computed is left to compute
    assert r.channel.texts() == ["#1 hi"]
    assert await r.queue.depth() == 1  # the first entry acknowledged, the second pending
    await r.turns.replay(saved, [first])
    assert r.channel.texts() == ["#1 hi"]  # sent once


async def test_a_dialogue_outcome_with_its_own_intent_is_recorded(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    [d] = await r.taken(msg("hi"))
    session = Session.new(CONV)
    inbound, nlu = await r.turns.understand(session, [d])
    outcome = TurnOutcome(replies=[], intent="refund", confidence=None)
    await r.turns.record(session, [d], inbound, nlu, outcome)
    await r.turns.deliver(session)
    await r.turns.acknowledge([d])
    assert session.history[-1].intent == "refund" and session.history[-1].confidence == 0.9
    assert r.channel.sent == [] and await r.queue.depth() == 0
    assert 'gateway_turns_total{channel="test",intent="other",outcome="answered"} 1.0' in (
        r.metrics.render().decode()
    )


class RacedDialogue(EchoDialogue):
    """While its first step runs, another worker (another store on the same Redis) answers the
    conversation and saves it: this turn's save then finds a newer session."""

    def __init__(self, rival: RedisStore) -> None:
        super().__init__()
        self.rival = rival
        self.raced = False

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        if not self.raced:
            self.raced = True
            other = Session.new(inbound.conversation)
            other.slots["turns"] = 5
            other.revision = 5
            other.turn_entries = ["rival-entry"]
            await self.rival.save(other)
        return await super().step(session, inbound, nlu)


@pytest.fixture
async def redis_stores(redis_url: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    ours, theirs = connect(redis_url), connect(redis_url)
    yield RedisStore(ours, prefix="t"), RedisStore(theirs, prefix="t")
    await ours.aclose()
    await theirs.aclose()


async def test_a_stale_session_is_run_again_on_the_fresh_state_without_using_an_attempt(
    tmp_path: Path, redis_stores: tuple[RedisStore, RedisStore]
) -> None:
    store, rival = redis_stores
    r = Rig(tmp_path, store=store, max_attempts=1)
    r.dialogue = RacedDialogue(rival)
    r.turns = TurnRunner(
        queue=r.queue,
        store=store,
        nlu=r.nlu,
        dialogue=r.dialogue,
        outbox=Outbox({"test": r.channel}, MemorySentLog(), MemoryRateLimiter(), r.metrics),
        metrics=r.metrics,
        settings=TurnSettings(max_attempts=1),
    )
    with logs_from_info() as logs:
        await r.turns.run(await r.taken(msg("hi")))
    assert r.channel.texts() == ["#6 hi"]  # answered once, from the rival's newer state
    assert len(r.dialogue.seen) == 2 and r.queue.dead == []
    stale = [e for e in logs if e["event"] == "turn.stale_session"]
    assert len(stale) == 1 and stale[0]["log_level"] == "info"
    assert not [e for e in logs if e["event"] == "turn.failed"]
    assert 'stage="turn"' not in r.metrics.render().decode()
    saved = await store.load(CONV.key)
    assert saved is not None and saved.revision == 6 and saved.slots["turns"] == 6


class StaleStore(MemoryStore):
    """A store that refuses every save as stale: at fault, since no one else writes."""

    async def save(self, session: Session) -> None:
        raise StaleSession(f"session {session.key} is not newer than the stored one")


async def test_a_store_that_is_always_stale_fails_the_turn_in_the_end(tmp_path: Path) -> None:
    r = Rig(tmp_path, store=StaleStore(ttl=600), max_attempts=2)
    with logs_from_info() as logs:
        await r.turns.run(await r.taken(msg("hi")))
    assert len(r.dialogue.seen) == 2 * (STALE_RETRIES + 1)
    assert [e["attempt"] for e in logs if e["event"] == "turn.failed"] == [1, 2]
    assert [d.inbound.text for d in r.queue.dead] == ["hi"]
    assert r.channel.texts() == [TurnSettings().failure_text]
