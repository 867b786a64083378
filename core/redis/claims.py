"""Spent webhook credentials (Mailgun tokens, Twilio signatures) in Redis, so that every
`serve` process, and the next one after a restart, refuses a replay."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import StoreUnavailable
from core.keys import hashed
from core.redis.client import OUTAGE

# A hash of the value and when it was first claimed (Redis's clock), set only when absent; on a
# key already held, whether it is held with the same value recently enough (the platform
# retrying one delivery), in one step.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HSETNX', KEYS[1], 'v', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 's', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
if now - tonumber(redis.call('HGET', KEYS[1], 's') or '0') < tonumber(ARGV[3]) then return 1 end
return 0
"""


class RedisClaims:
    """The webhooks' `ClaimStore` when REDIS_URL is set. Uses the connection of the other Redis
    backends (`gateway.storage.Storage` closes it)."""

    def __init__(self, redis: Redis, *, prefix: str = "gateway"):
        self._prefix = prefix
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, key: str, value: str, ttl: float, retry_for: float) -> bool:
        try:
            held: Any = await self._claim(
                keys=[f"{self._prefix}:claim:{hashed(key)}"],
                args=[value, max(1, int(ttl * 1000)), int(retry_for * 1000)],
            )
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"claim store unreachable: {exc}") from exc
        return bool(held)
