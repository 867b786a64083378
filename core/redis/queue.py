"""The shared inbox: Redis Streams partitioned by conversation, read by one consumer group.

Ordering across processes — why partitions and not a per-conversation lock. The engine already
keeps one conversation in order *inside* a process (one mailbox and one task per conversation).
With a lock, two workers could still read entries 1 and 2 of one conversation from the stream
and race for the lock, so entry 2 could win: a lock gives mutual exclusion, not order. Here an
event goes to stream `hash(conversation) % partitions`, and each partition is read by exactly one
worker at a time, which holds a lease on it (a key with expiry = `claim_idle_ms`, renewed every
2 s, or every third of it if that is shorter). So all of a conversation's entries reach the same
process in stream order, and the engine does the rest. Workers share the partitions fairly
(`ceil(partitions / live workers)`); a worker over its share stops reading a partition and gives
the lease back only once its entries there are acknowledged, so a hand-over never splits a
conversation between two processes.

A worker that dies keeps its lease until it expires (`claim_idle_ms`). The next owner does not
read the partition's new entries while another consumer still has entries pending there: it
takes them over with XAUTOCLAIM once they have been idle `claim_idle_ms` (the owner is dead), or
waits for their owner to acknowledge them (it was only cut off from Redis for a while and is
finishing its turns). That keeps the order through a crash and does not run a live worker's turn
twice. The same sweep, run with every renewal, also recovers entries stuck in a live worker (a
turn that died while Redis was down). If a worker is cut off longer than `claim_idle_ms` and then
comes back in the middle of a turn, two workers may run that turn: the sent-log makes each reply
go out once in all but a narrow race, and the session store's revision check (the fencing token:
a write whose revision is not newer than the stored one is refused) keeps the state from going
back in time. Keep `claim_idle_ms` above the longest Redis fail-over or restart you expect.

`put` is one Lua script: dedupe `SET NX EX` and `XADD` run together or not at all, and if the
XADD fails the dedupe key is removed again, so the platform's retry is not dropped as a duplicate.
`ack` is XACK + XDEL in one MULTI: handled entries leave the stream at once, so XLEN is the
backlog (`depth`) and nothing unread is ever trimmed away.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import time
import zlib
from collections.abc import Sequence
from typing import Any

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from core.errors import QueueUnavailable
from core.keys import hashed
from core.metrics import Metrics
from core.models import Inbound, invalid_fields
from core.ports import Delivery
from core.redis.client import OUTAGE

log = structlog.get_logger(__name__)

GROUP = "workers"
DEAD_KEEP = 10_000
"""Dead letters kept (approximately) in the dead-letter stream."""

_PUT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return false end
local id = redis.pcall('XADD', KEYS[2], '*', 'e', ARGV[2])
if type(id) == 'table' and id.err then
  redis.call('DEL', KEYS[1])
  return redis.error_reply(id.err)
end
return id
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10 * lease)
return redis.call('ZCOUNT', KEYS[1], now - lease, '+inf')
"""


SETTLED_EVERY = 2.0
"""Seconds between looks at the share of a worker that has it (at most a third of the lease)."""
UNSETTLED_EVERY = 0.5
"""Seconds between looks while a worker is below its share, draining or settling."""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randbytes(3).hex()}"


class RedisQueue:
    """The `Queue` shared by every process through Redis Streams: partitions by conversation,
    leases on partitions, dedupe and dead letters as the module's docstring explains. `gateway/`
    builds it when REDIS_URL is set."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "gateway",
        partitions: int = 16,
        claim_idle_ms: int = 30_000,
        dedupe_ttl: float = 86400.0,
        max_deliveries: int = 5,
        metrics: Metrics | None = None,
        consumer: str | None = None,
    ):
        self._r = redis
        self._prefix = prefix
        self._parts = partitions
        self._lease_ms = claim_idle_ms
        self._dedupe_ttl = max(1, int(dedupe_ttl))
        self._max_deliveries = max_deliveries
        self.metrics = metrics
        self.consumer = consumer or consumer_name()
        self._put = redis.register_script(_PUT)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._owned: set[int] = set()
        """Partitions this worker reads."""
        self._draining: set[int] = set()
        """Partitions over this worker's share: no more reads, lease given back once drained."""
        self._settling: set[int] = set()
        """Partitions just acquired and not read yet: a previous owner still has entries pending
        there. They are read once it acknowledged them, or once they were idle `claim_idle_ms`
        and claimed here (it died): never a new entry of a conversation before an old one."""
        self._due: list[int] = []
        """Owned partitions to look through, once per lease period, for entries pending longer
        than `claim_idle_ms` (a dead owner's, or a turn here that died with Redis down)."""
        self._inflight: dict[str, int] = {}
        self._next_maintenance = 0.0

    # -- keys -------------------------------------------------------------------------------

    def stream(self, part: int) -> str:
        return f"{self._prefix}:q:{part}"

    def _lease(self, part: int) -> str:
        return f"{self._prefix}:lease:{part}"

    @property
    def dead_stream(self) -> str:
        return f"{self._prefix}:dead"

    @property
    def _workers(self) -> str:
        return f"{self._prefix}:workers"

    def partition(self, conversation_key: str) -> int:
        return zlib.crc32(conversation_key.encode()) % self._parts

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._ensure_groups()
        except OUTAGE as exc:
            # A serve process may start while Redis is down: /readyz says so, webhooks answer 503.
            log.warning("queue.redis_unreachable_at_start", error=str(exc))

    async def _ensure_groups(self) -> None:
        for part in range(self._parts):
            try:
                await self._r.xgroup_create(self.stream(part), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def close(self) -> None:
        """Give the leases back at once (after the engine stopped), so the next owner need not
        wait for them to expire; what is still pending here it claims."""
        try:
            for part in self._owned | self._draining:
                await self._release(keys=[self._lease(part)], args=[self.consumer])
            if self._owned or self._draining:
                await self._r.zrem(self._workers, self.consumer)
        except (*OUTAGE, RedisError) as exc:
            log.warning("queue.release_failed", error=str(exc))
        self._owned.clear()
        self._draining.clear()

    # -- producing --------------------------------------------------------------------------

    async def put(self, inbound: Inbound) -> bool:
        part = self.partition(inbound.conversation.key)
        try:
            entry = await self._put(
                keys=[f"{self._prefix}:seen:{hashed(inbound.dedupe_key)}", self.stream(part)],
                args=[self._dedupe_ttl, inbound.to_json()],
            )
        except (*OUTAGE, RedisError) as exc:
            raise QueueUnavailable(f"redis refused or unreachable: {exc}") from exc
        return entry is not None

    # -- consuming --------------------------------------------------------------------------

    async def take(self, max_items: int, timeout: float) -> list[Delivery]:
        try:
            if time.monotonic() >= self._next_maintenance:
                await self._maintain()
            while self._due:
                part = self._due.pop()
                if part not in self._owned | self._draining:
                    continue
                claimed = await self._claim(part, self._lease_ms)
                if part in self._settling and not await self._foreign_pending(part):
                    self._settling.discard(part)
                    log.info("queue.partition_ready", partition=part)
                if claimed:
                    return claimed
            readable = sorted(self._owned - self._settling)
            if not readable:
                await asyncio.sleep(min(timeout, self._lease_ms / 3000))
                return []
            return await self._read(readable, max_items, timeout)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost its data: start over with empty streams
                log.warning("queue.group_missing", error=str(exc))
                await self._ensure_groups()
                return []
            raise QueueUnavailable(f"redis refused: {exc}") from exc
        except OUTAGE as exc:
            self._next_maintenance = 0.0
            raise QueueUnavailable(f"redis unreachable: {exc}") from exc

    async def _foreign_pending(self, part: int) -> bool:
        summary: Any = await self._r.xpending(self.stream(part), GROUP)
        me = self.consumer.encode()
        return any(c["name"] != me and c["pending"] for c in summary.get("consumers") or ())

    async def _read(self, parts: list[int], max_items: int, timeout: float) -> list[Delivery]:
        count = max(1, math.ceil(max_items / len(parts)))
        block = max(1, int(min(timeout, self._lease_ms / 3000) * 1000))
        reply: Any = await self._r.xreadgroup(
            GROUP, self.consumer, {self.stream(p): ">" for p in parts}, count=count, block=block
        )
        out: list[Delivery] = []
        for stream, entries in reply or []:
            part = int(stream.decode().rsplit(":", 1)[1])
            for entry_id, fields in entries:
                d = await self._delivery(part, entry_id, fields, 1)
                if d is not None:
                    out.append(d)
        return out

    async def _claim(self, part: int, min_idle: int) -> list[Delivery]:
        """Take over entries of the partition pending longer than `min_idle` ms, oldest first."""
        stream = self.stream(part)
        raw: list[tuple[bytes, dict[bytes, bytes]]] = []
        cursor: Any = "0-0"
        while True:
            reply = await self._r.xautoclaim(
                stream, GROUP, self.consumer, min_idle_time=min_idle, start_id=cursor, count=500
            )
            cursor, entries = reply[0], reply[1]
            raw.extend(e for e in entries if e[1] is not None)
            if cursor in (b"0-0", "0-0"):
                break
        if not raw:
            return []
        counts = {
            p["message_id"]: int(p["times_delivered"])
            for p in await self._r.xpending_range(
                stream,
                GROUP,
                min=raw[0][0],
                max=raw[-1][0],
                count=len(raw) + 100,
                consumername=self.consumer,
            )
        }
        out: list[Delivery] = []
        for entry_id, fields in raw:
            if f"{part}/{entry_id.decode()}" in self._inflight:
                continue  # still being handled here: not a dead worker's entry
            d = await self._delivery(part, entry_id, fields, counts.get(entry_id, 2))
            if d is not None:
                out.append(d)
        log.warning("queue.reclaimed", partition=part, entries=len(out), min_idle_ms=min_idle)
        return out

    async def _delivery(
        self, part: int, entry_id: bytes, fields: dict[bytes, bytes], attempts: int
    ) -> Delivery | None:
        eid = f"{part}/{entry_id.decode()}"
        try:
            inbound = Inbound.model_validate_json(fields[b"e"])
        except KeyError:
            await self._to_dead(part, entry_id, eid, b"", "unreadable: no event field")
            return None
        except ValidationError as exc:
            reason = f"unreadable: {invalid_fields(exc)}"
            await self._to_dead(part, entry_id, eid, fields[b"e"], reason)
            return None
        self._inflight[eid] = part
        d = Delivery(eid, inbound, attempts)
        if attempts > self._max_deliveries:
            await self.dead_letter([d], f"delivered {attempts} times without an ack")
            return None
        return d

    async def _maintain(self) -> None:
        """Heartbeat, renew leases, give back partitions over this worker's share, take free
        ones up to it."""
        self._next_maintenance = time.monotonic() + self._lease_ms / 3000
        alive = int(
            await self._heartbeat(keys=[self._workers], args=[self.consumer, self._lease_ms])
        )
        share = math.ceil(self._parts / max(1, alive))
        held = sorted(self._owned | self._draining)
        if held:
            pipe = self._r.pipeline(transaction=False)
            for part in held:
                await self._renew(
                    keys=[self._lease(part)], args=[self.consumer, self._lease_ms], client=pipe
                )
            renewed = await pipe.execute()
            for part, ok in zip(held, renewed, strict=True):
                if not ok:
                    log.warning("queue.lease_lost", partition=part)
                    self._owned.discard(part)
                    self._draining.discard(part)
        while len(self._owned) > share:
            part = max(self._owned)
            self._owned.discard(part)
            self._draining.add(part)
        await self._touch_inflight()
        busy = set(self._inflight.values())
        for part in sorted(self._draining - busy):
            await self._release(keys=[self._lease(part)], args=[self.consumer])
            self._draining.discard(part)
            log.info("queue.partition_released", partition=part)
        free = [p for p in range(self._parts) if p not in self._owned | self._draining]
        random.shuffle(free)
        for part in free:
            if len(self._owned) >= share:
                break
            if await self._r.set(self._lease(part), self.consumer, nx=True, px=self._lease_ms):
                self._owned.add(part)
                self._settling.add(part)
                log.info("queue.partition_acquired", partition=part, share=share, alive=alive)
        self._settling &= self._owned
        self._due = sorted(self._owned | self._draining)
        # Each look also renews the leases. Looking every few seconds (not every third of the
        # lease) lets a worker that joins or leaves change hands within seconds; a worker still
        # short of its share, draining or settling looks again within a second.
        unsettled = len(self._owned) < share or self._draining or self._settling
        every = UNSETTLED_EVERY if unsettled else SETTLED_EVERY
        self._next_maintenance = time.monotonic() + min(self._lease_ms / 3000, every)

    # -- settling ---------------------------------------------------------------------------

    async def _touch_inflight(self) -> None:
        """Reset the idle time of the entries this worker is still handling (a turn waiting out
        a platform's Retry-After, say), so the sweep does not take them for a dead worker's.
        XCLAIM with JUSTID leaves the delivery counter alone."""
        by_part: dict[int, list[Any]] = {}
        for eid, part in self._inflight.items():
            by_part.setdefault(part, []).append(eid.split("/", 1)[1])
        if not by_part:
            return
        pipe = self._r.pipeline(transaction=False)
        for part, ids in by_part.items():
            pipe.xclaim(self.stream(part), GROUP, self.consumer, 0, ids, justid=True)
        await pipe.execute()

    def _by_part(self, deliveries: Sequence[Delivery]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for d in deliveries:
            part_s, sid = d.entry_id.split("/", 1)
            out.setdefault(int(part_s), []).append(sid)
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            pipe = self._r.pipeline(transaction=True)
            for part, ids in self._by_part(deliveries).items():
                pipe.xack(self.stream(part), GROUP, *ids)
                pipe.xdel(self.stream(part), *ids)
            await pipe.execute()
        except (*OUTAGE, RedisError) as exc:
            raise QueueUnavailable(f"ack failed: {exc}") from exc
        for d in deliveries:
            self._inflight.pop(d.entry_id, None)

    async def dead_letter(self, deliveries: Sequence[Delivery], error: str) -> None:
        for d in deliveries:
            part, sid = d.entry_id.split("/", 1)
            await self._to_dead(
                int(part), sid.encode(), d.entry_id, d.inbound.to_json().encode(), error
            )

    async def _to_dead(self, part: int, sid: bytes, eid: str, event: bytes, error: str) -> None:
        try:
            pipe = self._r.pipeline(transaction=True)
            pipe.xadd(
                self.dead_stream,
                {"entry": eid, "error": error[:2000], "event": event, "at": str(time.time())},
                maxlen=DEAD_KEEP,
                approximate=True,
            )
            pipe.xack(self.stream(part), GROUP, sid)
            pipe.xdel(self.stream(part), sid)
            await pipe.execute()
        except (*OUTAGE, RedisError) as exc:
            raise QueueUnavailable(f"dead-letter failed: {exc}") from exc
        self._inflight.pop(eid, None)
        if self.metrics is not None:
            self.metrics.errors.labels(stage="dead_letter").inc()
        log.error("queue.dead_letter", entry=eid, stream=self.dead_stream, error=error[:500])

    # -- observing --------------------------------------------------------------------------

    async def depth(self) -> int:
        try:
            pipe = self._r.pipeline(transaction=False)
            for part in range(self._parts):
                pipe.xlen(self.stream(part))
            return int(sum(await pipe.execute()))
        except (*OUTAGE, RedisError) as exc:
            raise QueueUnavailable(f"depth failed: {exc}") from exc

    async def dead(self, count: int = 100) -> list[dict[str, str]]:
        """The latest dead letters, newest first (for operators and tests)."""
        rows: Any = await self._r.xrevrange(self.dead_stream, count=count)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]

    async def ping(self) -> None:
        try:
            await self._r.ping()
        except (*OUTAGE, RedisError) as exc:
            raise QueueUnavailable(f"redis unreachable: {exc}") from exc
