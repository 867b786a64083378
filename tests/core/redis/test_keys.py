"""No e-mail address, phone number or chat id in a Redis key name: sessions, send spacing,
flood control, the e-mail reply ledger, dedupe and claims all name their keys by a hash."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.keys import hashed
from core.models import ConversationRef, Inbound, Sender
from core.redis.claims import RedisClaims
from core.redis.client import connect
from core.redis.ledger import RedisReplyLedger
from core.redis.queue import RedisQueue
from core.redis.ratelimit import RedisRateLimiter, RedisSenderLimit
from core.redis.store import RedisStore
from core.session import Session

PEOPLE = [
    ConversationRef(channel="email", chat_id="john.doe@example.com"),
    ConversationRef(channel="email", chat_id="jöhn.döe@exämple.com", thread_id="t1"),
    ConversationRef(channel="whatsapp", chat_id="+14155550123"),
    ConversationRef(channel="telegram", chat_id="987654321"),
]
IDENTIFIERS = ["john", "jöhn", "döe", "example", "exämple", "4155550123", "987654321", "@"]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    r = connect(redis_url)
    yield r
    await r.aclose()


async def test_no_identifier_shows_in_any_key_name(redis: Redis) -> None:
    store = RedisStore(redis, prefix="t", ttl=60)
    rate = RedisRateLimiter(redis, prefix="t")
    flood = RedisSenderLimit(redis, limit=5, window=60, prefix="t")
    ledger = RedisReplyLedger(redis, prefix="t")
    queue = RedisQueue(redis, prefix="t", partitions=2)
    claims = RedisClaims(redis, prefix="t")
    for n, conv in enumerate(PEOPLE):
        s = Session.new(conv)
        s.revision = 1
        await store.save(s)
        await rate.wait(conv.key, 0.001)
        await flood.hit(f"{conv.channel}:{conv.chat_id}", f"e{n}")
        await ledger.claim(f"email:said:{conv.chat_id}:x", "m1", 60)
        await ledger.count(f"email:answered:{conv.chat_id}", "m1", 60)
        await queue.put(
            Inbound(
                event_id=f"<{n}.{conv.chat_id}>",
                conversation=conv,
                sender=Sender(id=conv.chat_id),
                text="hi",
            )
        )
        await claims.claim(f"mailgun:{conv.chat_id}", "v", 60, 60)
    names = [k.decode() async for k in redis.scan_iter("t:*")]
    kinds = {n.split(":")[1] for n in names}
    assert {"session", "rate", "flood", "flood-warned", "ledger", "seen", "claim"} - kinds <= {
        "flood-warned"  # written only once a sender goes over the limit
    }, kinds
    leaked = [n for n in names if any(i in n for i in IDENTIFIERS)]
    assert leaked == []
    for conv in PEOPLE:  # still one key per conversation, found again by its hash
        assert await store.load(conv.key) is not None
        assert await redis.exists(f"t:session:{hashed(conv.key)}")
