"""Erasing one customer from Redis: their queued events and dead letters (the event holds their
text), the dedupe keys of those events, their sessions, web chat transcripts and flood
counters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from core.forget import Customer, Erasure
from core.keys import hashed
from core.models import Inbound
from core.redis.queue import GROUP

BATCH = 500
"""Stream entries read per XRANGE: an erasure walks long streams in bounded steps."""


async def forget(
    redis: Redis,
    prefix: str,
    who: Customer,
    erasure: Erasure,
    known: Iterable[str] = (),
    events: Iterable[str] = (),
) -> None:
    """`known` and `events`: keys of conversations and dedupe keys of events found elsewhere
    (the conversation store) to be theirs."""
    conversations = {who.direct, *known}
    for key in sorted(set(events)):
        erasure.removed["dedupe keys"] += await redis.delete(f"{prefix}:seen:{hashed(key)}")
    streams = [k async for k in redis.scan_iter(match=f"{prefix}:q:*", _type="STREAM")]
    for stream in sorted(streams):
        for inbound in await _erase_entries(redis, stream, b"e", who, group=True):
            erasure.removed["queued events"] += 1
            conversations.add(inbound.conversation.key)
            erasure.removed["dedupe keys"] += await redis.delete(
                f"{prefix}:seen:{hashed(inbound.dedupe_key)}"
            )
    for inbound in await _erase_entries(redis, f"{prefix}:dead", b"event", who, group=False):
        erasure.removed["dead letters"] += 1
        conversations.add(inbound.conversation.key)
        erasure.removed["dedupe keys"] += await redis.delete(
            f"{prefix}:seen:{hashed(inbound.dedupe_key)}"
        )
    for key in sorted(conversations):
        erasure.removed["sessions"] += await redis.delete(f"{prefix}:session:{hashed(key)}")
        erasure.removed["web chat transcripts"] += await redis.delete(
            f"{prefix}:transcript:{hashed(key)}"
        )
    sender = hashed(who.direct)
    erasure.removed["rate-limit counters"] += await redis.delete(
        f"{prefix}:flood:{sender}", f"{prefix}:flood-warned:{sender}"
    )


async def _erase_entries(
    redis: Redis, stream: str | bytes, field: bytes, who: Customer, *, group: bool
) -> list[Inbound]:
    """Delete the entries of `stream` whose event `who` wrote (acknowledged first, so no
    consumer is left holding them); returns their events."""
    found: list[Inbound] = []
    start = "-"
    while True:
        rows: Any = await redis.xrange(stream, min=start, max="+", count=BATCH)
        for entry_id, fields in rows:
            try:
                inbound = Inbound.model_validate_json(fields.get(field, b""))
            except ValidationError:
                continue
            if who.wrote(inbound):
                if group:
                    await redis.xack(stream, GROUP, entry_id)
                await redis.xdel(stream, entry_id)
                found.append(inbound)
        if len(rows) < BATCH:
            return found
        start = "(" + rows[-1][0].decode()


async def expire_dead_letters(redis: Redis, prefix: str, before_ms: int) -> int:
    """Drop dead letters older than `before_ms` (Unix milliseconds; entry ids are times)."""
    return int(await redis.xtrim(f"{prefix}:dead", minid=before_ms, approximate=False))
