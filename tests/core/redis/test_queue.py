"""The Redis Streams queue on a real redis-server: dedupe, partitions, reclaim, dead letters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from core.errors import QueueUnavailable
from core.keys import hashed
from core.metrics import Metrics
from core.models import ConversationRef, Inbound, Sender
from core.ports import Delivery
from core.redis.client import connect
from core.redis.queue import RedisQueue
from tests.support.redis_server import RedisServer


def event(eid: str, chat: str = "c1", text: str = "hi") -> Inbound:
    return Inbound(
        event_id=eid,
        conversation=ConversationRef(channel="test", chat_id=chat),
        sender=Sender(id=chat),
        text=text,
    )


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator[Callable[..., RedisQueue]]:
    clients: list[Redis] = []
    queues: list[RedisQueue] = []

    def factory(**kw: object) -> RedisQueue:
        r = connect(redis_url)
        clients.append(r)
        kw.setdefault("claim_idle_ms", 300)
        kw.setdefault("partitions", 4)
        q = RedisQueue(r, prefix="t", **kw)  # type: ignore[arg-type]
        queues.append(q)
        return q

    yield factory
    for r in clients:
        await r.aclose()


async def take_all(q: RedisQueue, n: int, within: float = 10.0) -> list[Delivery]:
    out: list[Delivery] = []
    deadline = time.monotonic() + within
    while len(out) < n and time.monotonic() < deadline:
        out += await q.take(64, 0.1)
    return out


async def test_put_take_ack_and_dedupe(make: Callable[..., RedisQueue]) -> None:
    q = make()
    await q.start()
    assert await q.put(event("e1"))
    assert not await q.put(event("e1")), "the same event id is a duplicate"
    assert await q.depth() == 1
    got = await take_all(q, 1)
    assert [d.inbound.event_id for d in got] == ["e1"]
    assert got[0].attempts == 1
    await q.ack(got)
    assert await q.depth() == 0
    assert not await q.put(event("e1")), "still a duplicate after it was handled"


async def test_failed_xadd_leaves_no_dedupe_key(make: Callable[..., RedisQueue]) -> None:
    q = make()
    await q.start()
    e = event("e2")
    stream = q.stream(q.partition(e.conversation.key))
    await q._r.delete(stream)
    await q._r.set(stream, "not a stream")  # XADD now fails with WRONGTYPE
    with pytest.raises(QueueUnavailable):
        await q.put(e)
    assert await q._r.exists(f"t:seen:{hashed(e.dedupe_key)}") == 0
    await q._r.delete(stream)
    await q.start()
    assert await q.put(e), "the platform's retry is queued, not dropped as a duplicate"


async def test_order_within_conversation_and_spread(make: Callable[..., RedisQueue]) -> None:
    q = make()
    await q.start()
    for i in range(30):
        await q.put(event(f"e{i}", chat=f"c{i % 5}", text=str(i)))
    got = await take_all(q, 30)
    assert len(got) == 30
    for c in range(5):
        texts = [int(d.inbound.text) for d in got if d.inbound.conversation.chat_id == f"c{c}"]
        assert texts == sorted(texts)
    assert len({d.entry_id for d in got}) == 30


async def test_two_workers_share_partitions_and_conversations_stay_put(
    make: Callable[..., RedisQueue],
) -> None:
    a, b = make(), make()
    await a.start()
    await a.take(1, 0.05)
    await b.take(1, 0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (a._owned and b._owned):
        await asyncio.gather(a.take(1, 0.05), b.take(1, 0.05))
    assert a._owned and b._owned and not (a._owned & b._owned)
    assert len(a._owned) + len(b._owned) == 4


async def test_a_joining_worker_gets_its_share_within_seconds_at_production_lease(
    make: Callable[..., RedisQueue],
) -> None:
    """With the default 30 s lease, the worker holding every partition notices a newcomer at
    its next look at the share (every 2 s), not a lease's third (10 s) later."""
    a, b = make(claim_idle_ms=30_000), make(claim_idle_ms=30_000)
    await a.start()
    await a.take(1, 0.05)
    assert len(a._owned) == 4
    joined = time.monotonic()

    def balanced() -> bool:
        # The hand-over is two looks apart: `a` moves partitions to draining and releases them
        # while `b` may be trying them, so `b` can hold one for a moment before its next look
        # (half a second later, as it is below its share) takes the other. Wait for the end
        # state, not for the first sign of it.
        return len(a._owned) == 2 and len(b._owned) == 2 and not a._draining

    while time.monotonic() - joined < 8 and not balanced():
        await asyncio.gather(a.take(1, 0.1), b.take(1, 0.1))
    assert balanced(), (a._owned, a._draining, b._owned)
    assert a._owned | b._owned == {0, 1, 2, 3}
    assert time.monotonic() - joined < 5


async def test_dead_worker_entries_are_reclaimed(make: Callable[..., RedisQueue]) -> None:
    dead, alive = make(), make()
    await dead.start()
    await dead.put(event("x1", chat="c1"))
    got = await take_all(dead, 1)
    assert got
    # `dead` never acks and stops renewing; `alive` takes over once the lease expires
    again = await take_all(alive, 1, within=15)
    assert [d.inbound.event_id for d in again] == ["x1"]
    assert again[0].attempts == 2
    assert again[0].entry_id == got[0].entry_id
    await alive.ack(again)
    assert await alive.depth() == 0


async def test_dead_letter_keeps_the_error(make: Callable[..., RedisQueue]) -> None:
    metrics = Metrics()
    q = make(metrics=metrics)
    await q.start()
    await q.put(event("d1"))
    got = await take_all(q, 1)
    await q.dead_letter(got, "RuntimeError('model exploded')")
    assert await q.depth() == 0
    dead = await q.dead()
    assert dead[0]["entry"] == got[0].entry_id
    assert "model exploded" in dead[0]["error"]
    assert Inbound.model_validate_json(dead[0]["event"]).event_id == "d1"
    assert metrics.errors.labels(stage="dead_letter")._value.get() == 1


async def test_poison_entry_goes_to_dead_letters(make: Callable[..., RedisQueue]) -> None:
    q = make(max_deliveries=1)
    await q.start()
    await q.put(event("p1"))
    assert await take_all(q, 1)
    other = make(max_deliveries=1)
    assert await take_all(other, 1, within=2.5) == []
    dead = await other.dead()
    assert dead and "delivered 2 times" in dead[0]["error"]


async def test_an_unreadable_entry_is_dead_lettered_without_its_text_in_the_log(
    make: Callable[..., RedisQueue], redis_url: str
) -> None:
    q = make()
    await q.start()
    bad = event("u1", text="my card number is 4111").model_dump_json().replace('"sender"', '"x"')
    r = connect(redis_url)
    await r.xadd(q.stream(q.partition("test:c1")), {"e": bad})
    await r.aclose()
    with capture_logs() as logs:
        assert await take_all(q, 1, within=1.5) == []
    [line] = [e for e in logs if e["event"] == "queue.dead_letter"]
    assert "sender: missing" in line["error"] and "4111" not in str(line)
    assert (await q.dead())[0]["event"] == bad


async def test_outage_raises_queue_unavailable(own_redis: RedisServer) -> None:
    r = connect(own_redis.url)
    q = RedisQueue(r, prefix="t", claim_idle_ms=300)
    await q.start()
    assert await q.put(event("o1"))
    own_redis.stop()
    with pytest.raises(QueueUnavailable):
        await q.put(event("o2"))
    with pytest.raises(QueueUnavailable):
        await q.ping()
    with pytest.raises(QueueUnavailable):
        await q.take(10, 0.1)
    own_redis.start()
    await q.ping()
    await r.aclose()


async def test_hand_over_waits_for_the_entries_in_flight(make: Callable[..., RedisQueue]) -> None:
    a, b = make(), make()
    await a.start()
    await a.take(1, 0.05)
    assert len(a._owned) == 4
    await a.put(event("h1", chat="c1", text="1"))
    first = await take_all(a, 1)
    part = a.partition(first[0].conversation_key)
    await a.put(event("h2", chat="c1", text="2"))
    # b joins: a gives up half of the partitions, but not `part` while h1 is in flight
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(a._owned) + len(a._draining) > 2:
        got = await asyncio.gather(a.take(8, 0.05), b.take(8, 0.05))
        assert not got[1], "b must not read c1's h2 while a still handles h1"
        assert [d.inbound.event_id for d in got[0]] in ([], ["h2"])
        if got[0]:
            first += got[0]
        if part in a._draining:
            break
    await a.ack(first)
    later: list[Delivery] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        d.inbound.event_id == "h2" for d in first + later
    ):
        for d in await b.take(8, 0.05) + await a.take(8, 0.05):
            later.append(d)
    assert [d.inbound.event_id for d in first + later] == ["h1", "h2"]


async def test_a_raw_payload_json_cannot_hold_is_left_out_not_a_failed_put(
    make: Callable[..., RedisQueue],
) -> None:
    q = make()
    await q.start()
    odd = event("s1").model_copy(update={"raw": {"text": "a lone \ud800 escape"}})
    assert await q.put(odd)
    [got] = await take_all(q, 1)
    assert got.inbound.event_id == "s1" and got.inbound.raw is None


async def test_own_long_turn_is_not_reclaimed_by_its_worker(
    make: Callable[..., RedisQueue],
) -> None:
    """A turn that runs longer than claim_idle_ms (a platform's Retry-After, say) stays this
    worker's: the sweep does not hand it back again, and its delivery count stays at one, so it
    is not dead-lettered for taking long."""
    q = make(max_deliveries=1)
    await q.start()
    await q.put(event("e1"))
    [d] = await take_all(q, 1)
    deadline = time.monotonic() + 2.0  # many times claim_idle_ms (300 ms) and its sweeps
    again: list[Delivery] = []
    while time.monotonic() < deadline:
        again += await q.take(64, 0.1)
    assert again == []
    pending = await q._r.xpending_range(
        q.stream(int(d.entry_id.split("/")[0])), "workers", "-", "+", 10
    )
    assert [p["times_delivered"] for p in pending] == [1]
    await q.ack([d])
    assert await q.depth() == 0
