"""Sessions, the sent-log, rate limits and the relay in a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.errors import StaleSession
from core.keys import hashed
from core.metrics import Metrics
from core.models import ConversationRef, Inbound, Sender
from core.outbox import Outbox
from core.ports import Verdict
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.redis.client import connect
from core.redis.ratelimit import RedisRateLimiter, RedisSenderLimit
from core.redis.relay import RedisRelay
from core.redis.store import RedisSentLog, RedisStore
from core.redis.transcript import RedisTranscript
from core.senderlimit import SLOW_DOWN, MemorySenderLimit, screen
from core.session import Session
from core.store import MemorySentLog
from tests.support.doubles import RecordingChannel


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    r = connect(redis_url)
    yield r
    await r.aclose()


async def test_session_round_trip_with_expiry(redis: Redis) -> None:
    store = RedisStore(redis, prefix="t", ttl=60)
    s = Session.new(ConversationRef(channel="test", chat_id="c1"))
    assert await store.load(s.key) is None
    s.slots["order_id"] = "A1B2C3"
    s.revision = 1
    await store.save(s)
    loaded = await store.load(s.key)
    assert loaded is not None and loaded.slots == {"order_id": "A1B2C3"}
    ttl = await redis.pttl(f"t:session:{hashed(s.key)}")
    assert 55_000 < ttl <= 60_000
    await store.delete(s.key)
    assert await store.load(s.key) is None


async def test_the_web_chat_transcript_is_numbered_bounded_and_expires(redis: Redis) -> None:
    t = RedisTranscript(redis, prefix="t", ttl=60, keep=3)
    a1 = await t.add("webchat:a", {"from": "user", "text": "hi", "id": "m1"})
    b1 = await t.add("webchat:b", {"from": "user", "text": "other visitor"})
    a2 = await t.add("webchat:a", {"from": "bot", "text": "hi: hello ✨"})
    a3 = await t.add("webchat:a", {"from": "bot", "text": "hi: hello ✨"})  # twice the same
    assert a1 < b1 < a2 < a3
    assert await t.since("webchat:a") == [
        {"from": "user", "text": "hi", "id": "m1", "seq": a1},
        {"from": "bot", "text": "hi: hello ✨", "seq": a2},
        {"from": "bot", "text": "hi: hello ✨", "seq": a3},
    ]
    assert [e["seq"] for e in await t.since("webchat:a", after=a2)] == [a3]
    assert [e["seq"] for e in await t.since("webchat:a", limit=1)] == [a3]
    a4 = await t.add("webchat:a", {"text": "the fourth"})
    assert [e["seq"] for e in await t.since("webchat:a")] == [a2, a3, a4]  # keep=3
    key = f"t:transcript:{hashed('webchat:a')}"
    assert 55_000 < await redis.pttl(key) <= 60_000


async def test_stale_write_is_refused(redis: Redis) -> None:
    store = RedisStore(redis, prefix="t", ttl=60)
    s = Session.new(ConversationRef(channel="test", chat_id="c2"))
    s.revision = 2
    await store.save(s)
    old = s.model_copy(update={"revision": 2, "slots": {"x": 1}})
    with pytest.raises(StaleSession):
        await store.save(old)
    loaded = await store.load(s.key)
    assert loaded is not None and loaded.slots == {}


async def test_other_format_loads_as_new(redis: Redis) -> None:
    store = RedisStore(redis, prefix="t", ttl=60)
    s = Session.new(ConversationRef(channel="test", chat_id="c3"))
    s.revision = 1
    await store.save(s)
    await redis.hset(f"t:session:{hashed(s.key)}", "v", "999")
    assert await store.load(s.key) is None


async def test_sent_log(redis: Redis) -> None:
    sent = RedisSentLog(redis, prefix="t", ttl=60)
    assert not await sent.seen("0/1-0:0")
    await sent.mark("0/1-0:0")
    assert await sent.seen("0/1-0:0")


async def test_rate_limit_spacing_is_shared(redis_url: str) -> None:
    a, b = connect(redis_url), connect(redis_url)
    la, lb = RedisRateLimiter(a, prefix="t"), RedisRateLimiter(b, prefix="t")
    t0 = time.monotonic()
    await asyncio.gather(la.wait("chat", 0.2), lb.wait("chat", 0.2), la.wait("chat", 0.2))
    assert time.monotonic() - t0 >= 0.38
    t1 = time.monotonic()
    await la.wait("other", 0.2)
    assert time.monotonic() - t1 < 0.15, "another chat does not wait"
    await a.aclose()
    await b.aclose()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_sender_limit(kind: str, redis: Redis) -> None:
    limit = (
        MemorySenderLimit(limit=3, window=60)
        if kind == "memory"
        else RedisSenderLimit(redis, limit=3, window=60, prefix="t")
    )
    verdicts = [await limit.hit("test:u1", f"e{i}") for i in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.WARN, Verdict.DROP, Verdict.DROP]
    assert await limit.hit("test:u2", "e0") is Verdict.ALLOW
    assert await limit.hit("test:u1", "e0") is not Verdict.ALLOW


async def test_relay_reaches_every_subscriber(redis_url: str) -> None:
    pub = RedisRelay(connect(redis_url), prefix="t")
    subs = [RedisRelay(connect(redis_url), prefix="t") for _ in range(2)]
    got: list[list[bytes]] = [[], []]
    for i, sub in enumerate(subs):

        async def handler(data: bytes, i: int = i) -> None:
            got[i].append(data)

        await sub.subscribe("webchat", handler)
    await pub.publish("webchat", b"frame-1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(got):
        await asyncio.sleep(0.02)
    assert got == [[b"frame-1"], [b"frame-1"]]
    for r in [pub, *subs]:
        await r.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_screen_answers_a_flood_once_and_acks_the_rest(kind: str, redis: Redis) -> None:
    channel = RecordingChannel()
    outbox = Outbox({"test": channel}, MemorySentLog(), MemoryRateLimiter(), Metrics())
    queue = MemoryQueue()
    limit = (
        MemorySenderLimit(limit=2, window=60)
        if kind == "memory"
        else RedisSenderLimit(redis, limit=2, window=60, prefix="t")
    )
    for i in range(5):
        await queue.put(
            Inbound(
                event_id=f"f{i}",
                conversation=ConversationRef(channel="test", chat_id="room"),
                sender=Sender(id="u1"),
                text=f"m{i}",
            )
        )
    batch = await queue.take(10, 0.1)
    keep = await screen(limit, batch, outbox=outbox, queue=queue)
    assert [d.inbound.text for d in keep] == ["m0", "m1"]
    assert channel.texts() == [SLOW_DOWN]
    assert await queue.depth() == 2, "the dropped events are acknowledged, the kept ones not yet"
