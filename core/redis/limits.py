"""Abuse limits shared by every process through Redis, on Redis's clock: one script per check,
so two processes counting at once cannot both take the last place."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import StoreUnavailable
from core.redis.client import OUTAGE
from core.redis.window import window_script

# The event already counted is allowed again (a turn run twice counts once); a refused one is
# not added.
_HIT = window_script("""
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
count_in()
return 0
""")

_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[1]) then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[2] then return 0 end
return math.max(1, redis.call('PTTL', KEYS[1]))
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLimits:
    """`core.ports.Limits` for every process sharing Redis: keys `<prefix>:limit:<key>`
    (sorted sets) and `<prefix>:once:<key>` (claims), each expiring with its window. Raises
    `StoreUnavailable` when Redis does not answer; each caller decides whether that fails open
    or closed."""

    def __init__(self, redis: Redis, *, prefix: str = "gateway", owned: bool = False):
        self._r = redis
        self._prefix = prefix
        self._owned = owned
        self._hit = redis.register_script(_HIT)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def hit(self, key: str, limit: int, window: float, event: str) -> float:
        if limit <= 0:
            return 0.0
        keys = [f"{self._prefix}:limit:{key}"]
        wait_us = await self._run(self._hit, keys, [int(window * 1_000_000), limit, event])
        return int(wait_us) / 1_000_000

    async def claim(self, key: str, period: float, owner: str) -> float:
        keys = [f"{self._prefix}:once:{key}"]
        wait_ms = await self._run(self._claim, keys, [max(1, int(period * 1000)), owner])
        return int(wait_ms) / 1000

    async def release(self, key: str, owner: str) -> None:
        await self._run(self._release, [f"{self._prefix}:once:{key}"], [owner])

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"limits unreachable: {exc}") from exc

    async def close(self) -> None:
        if self._owned:
            await self._r.aclose()
