"""The engine's flood hook: a sender over the limit is told once to slow down; the rest of the
flood is acknowledged unanswered, and the allowed messages are answered as usual."""

from __future__ import annotations

import asyncio

from core.engine import Engine
from core.metrics import Metrics
from core.models import ConversationRef, Inbound, Sender
from core.outbox import Outbox
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.senderlimit import SLOW_DOWN, MemorySenderLimit
from core.store import MemorySentLog, MemoryStore
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel


async def test_flood_is_answered_once() -> None:
    channel = RecordingChannel()
    queue = MemoryQueue()
    metrics = Metrics()
    engine = Engine(
        queue=queue,
        store=MemoryStore(ttl=60),
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        outbox=Outbox({"test": channel}, MemorySentLog(), MemoryRateLimiter(), metrics),
        metrics=metrics,
        senders=MemorySenderLimit(limit=2, window=60),
    )
    events = [
        Inbound(
            event_id=f"f{i}",
            conversation=ConversationRef(channel="test", chat_id="room"),
            sender=Sender(id="u1"),
            text=f"m{i}",
        )
        for i in range(5)
    ]
    done = [engine.expect(e) for e in events]
    for e in events:
        await queue.put(e)
    await engine.start()
    await asyncio.wait_for(asyncio.gather(*done), 10)
    await engine.stop()
    assert channel.texts() == [SLOW_DOWN, "#1 m0\nm1"]
    assert await queue.depth() == 0
