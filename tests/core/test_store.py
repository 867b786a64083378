"""The in-memory session store: expiry, the sweep that gives memory back after SESSION_TTL
without the conversations being heard from again, and a soak through the engine that shows it.

The soak's size is `SOAK_CONVERSATIONS` (default 3,000 in `make test`; 30,000 for the full
run: `SOAK_CONVERSATIONS=30000 pytest tests/core/test_store.py -k soak`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
import structlog

from core import store as store_module
from core.engine import Engine, EngineSettings
from core.metrics import Metrics
from core.models import Capabilities, ConversationRef, Inbound, Sender
from core.outbox import Outbox
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.session import Session
from core.store import MemorySentLog, MemoryStore
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel

SOAK = int(os.environ.get("SOAK_CONVERSATIONS", "3000"))
TTL = 1800.0


def session(chat: str, text: str = "hello") -> Session:
    s = Session.new(ConversationRef(channel="webchat", chat_id=chat))
    s.slots["said"] = text
    return s


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


async def test_a_session_lives_ttl_seconds_from_its_last_save() -> None:
    now = [0.0]
    store = MemoryStore(ttl=10, clock=lambda: now[0])
    await store.save(session("a"))
    now[0] = 9.0
    await store.save(session("a", "again"))
    now[0] = 18.9
    loaded = await store.load("webchat:a")
    assert loaded is not None and loaded.slots["said"] == "again"
    now[0] = 19.0
    assert await store.load("webchat:a") is None
    await store.close()


async def test_expired_sessions_are_swept_without_being_loaded_again() -> None:
    """Visitors who never come back: their sessions went only when the same key was loaded
    again, so each one stayed in memory for good."""
    now = [0.0]
    store = MemoryStore(ttl=10, clock=lambda: now[0], sweep_every=0.01)
    for i in range(500):
        await store.save(session(f"v{i}"))
    now[0] = 5.0
    await store.save(session("recent"))
    now[0] = 10.5
    await until(lambda: len(store) == 1, f"expired sessions kept: {len(store)} left")
    assert await store.load("webchat:recent") is not None
    now[0] = 15.0
    await until(lambda: len(store) == 0, "the last session was not swept")
    await store.close()


async def test_a_sweep_step_is_bounded_and_gives_the_loop_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "SWEEP_BATCH", 100)
    now = [0.0]
    store = MemoryStore(ttl=10, clock=lambda: now[0], sweep_every=0.01)
    for i in range(250):
        await store.save(session(f"v{i}"))
    now[0] = 11.0
    sizes: list[int] = []

    async def watch() -> None:
        while len(store):
            sizes.append(len(store))
            await asyncio.sleep(0)

    await asyncio.wait_for(watch(), 10)
    assert {250, 150, 50} <= set(sizes), sizes
    await store.close()


async def test_saves_sweep_a_little_too() -> None:
    """Under steady traffic the front of the store is cleared by the saves themselves."""
    now = [0.0]
    store = MemoryStore(ttl=10, clock=lambda: now[0], sweep_every=3600)
    for i in range(100):
        await store.save(session(f"old{i}"))
    now[0] = 20.0
    for i in range(50):
        await store.save(session(f"new{i}"))
    assert len(store) == 50
    await store.close()


async def conversations(engine: Engine, queue: MemoryQueue, first: int, count: int) -> None:
    """`count` new visitors with two messages each (one turn each)."""
    text = "Hello, I would like to know where my order is. " * 12
    for start in range(first, first + count, 500):
        for n in range(2):
            items = [
                Inbound(
                    event_id=f"v{i}-{n}",
                    conversation=ConversationRef(channel="webchat", chat_id=f"visitor-{i}"),
                    sender=Sender(id=f"visitor-{i}"),
                    text=f"{n} {text}",
                )
                for i in range(start, min(start + 500, first + count))
            ]
            waits = [engine.expect(i) for i in items]
            for i in items:
                assert await queue.put(i)
            await asyncio.wait_for(asyncio.gather(*waits), 120)


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Warnings and errors only: a line per turn would cost most of the soak's time."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.configure(**before)


@pytest.mark.usefixtures("quiet_logs")
async def test_soak_memory_comes_back_after_the_session_ttl() -> None:
    """Conversations through the engine, then SESSION_TTL passes, then as many new ones: the
    first batch's memory comes back, so the second adds no more than the first did. (What stays
    is the dedupe memory, a key per event and reply, kept for DEDUPE_TTL by design.)"""
    now = [0.0]
    store = MemoryStore(ttl=TTL, clock=lambda: now[0], sweep_every=0.02)
    queue = MemoryQueue()
    # Counts what it is asked to send and keeps nothing, so the soak measures the gateway.
    channel = RecordingChannel("webchat", capabilities=Capabilities(max_text=4000), keep=False)
    metrics = Metrics()
    nlu, dialogue = KeywordNlu(), EchoDialogue()
    nlu.calls = dialogue.seen = _Forgetful()  # type: ignore[assignment]  # the doubles keep texts
    engine = Engine(
        queue=queue,
        store=store,
        nlu=nlu,
        dialogue=dialogue,
        outbox=Outbox({"webchat": channel}, MemorySentLog(), MemoryRateLimiter(), metrics),
        metrics=metrics,
        settings=EngineSettings(concurrency=64),
    )
    await engine.start()
    tracemalloc.start()
    try:
        await conversations(engine, queue, 0, 200)  # warm up (lazy imports, caches, pools)
        now[0] += TTL + 1
        await until(lambda: len(store) == 0, "warm-up sessions not swept")
        base = traced()
        await conversations(engine, queue, 1000, SOAK)
        held = len(store)
        first = traced() - base
        now[0] += TTL + 1
        await until(lambda: len(store) == 0, f"{len(store)} expired sessions kept")
        after_expiry = traced() - base
        await conversations(engine, queue, 1000 + SOAK, SOAK)
        second = traced() - base
    finally:
        tracemalloc.stop()
        await engine.stop(5)
        await store.close()
    figures = (
        f"{SOAK} conversations: +{first / 1e6:.1f} MB; after expiry +{after_expiry / 1e6:.1f} MB;"
        f" {SOAK} more: +{second / 1e6:.1f} MB"
    )
    assert channel.calls == 2 * (200 + 2 * SOAK), figures
    assert held == SOAK, f"{held} sessions held after the first batch; {figures}"
    assert after_expiry < 0.25 * first, figures
    assert second < 1.35 * first, figures


class _Forgetful(list[object]):
    def append(self, _: object) -> None:
        return None
