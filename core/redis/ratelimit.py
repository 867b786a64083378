"""Rate limits shared by every process through Redis, on Redis's clock."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import StoreUnavailable
from core.keys import hashed
from core.ports import Verdict
from core.redis.client import OUTAGE
from core.redis.window import window_script

_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], slot + interval, 'PX', math.floor(interval / 1000) + 1000)
return slot - now
"""

# Every event counts, the refused too: a sender who keeps flooding stays over the limit.
_WINDOW = window_script("""
count_in()
local n = redis.call('ZCARD', KEYS[1])
if n <= limit then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', math.floor(window / 1000) + 1) then return 1 end
return 2
""")


class RedisRateLimiter:
    """Per-chat spacing of sends (platform limits) across every worker: each send reserves the
    next free slot for its chat in one script, then sleeps until it."""

    def __init__(self, redis: Redis, *, prefix: str = "gateway"):
        self._r = redis
        self._prefix = prefix
        self._slot = redis.register_script(_SLOT)

    async def wait(self, key: str, interval: float) -> None:
        if interval <= 0:
            return
        try:
            delay_us: Any = await self._slot(
                keys=[f"{self._prefix}:rate:{hashed(key)}"], args=[int(interval * 1_000_000)]
            )
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"rate limiter unreachable: {exc}") from exc
        if int(delay_us) > 0:
            await asyncio.sleep(int(delay_us) / 1_000_000)


class RedisSenderLimit:
    """Inbound flood control per sender, shared by every worker: a sliding window of the last
    `window` seconds in a sorted set. The first event over `limit` is told to slow down (WARN),
    the rest of the window's excess is dropped (DROP)."""

    def __init__(self, redis: Redis, *, limit: int, window: float, prefix: str = "gateway"):
        self._r = redis
        self._prefix = prefix
        self.limit = limit
        self.window = window
        self._hit = redis.register_script(_WINDOW)

    async def hit(self, sender_key: str, event_key: str) -> Verdict:
        try:
            code: Any = await self._hit(
                keys=[
                    f"{self._prefix}:flood:{hashed(sender_key)}",
                    f"{self._prefix}:flood-warned:{hashed(sender_key)}",
                ],
                args=[int(self.window * 1_000_000), self.limit, event_key],
            )
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"sender limit unreachable: {exc}") from exc
        return (Verdict.ALLOW, Verdict.WARN, Verdict.DROP)[int(code)]
