"""The e-mail auto-responder's reply ledger in Redis, so every worker process sees who was
already answered (RFC 3834's one reply per sender and period holds across processes)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import StoreUnavailable
from core.keys import hashed
from core.redis.client import OUTAGE

_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then return 1 end
return 0
"""

_COUNT = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SCARD', KEYS[1])
"""


class RedisReplyLedger:
    """`claim` and `count` of the e-mail adapter's `ReplyLedger`, each one atomic script. It
    owns its client (the channel closes it)."""

    def __init__(self, redis: Redis, *, prefix: str = "gateway"):
        self._r = redis
        self._prefix = prefix
        self._claim = redis.register_script(_CLAIM)
        self._count = redis.register_script(_COUNT)

    async def claim(self, key: str, owner: str, ttl: float) -> bool:
        return bool(await self._run(self._claim, key, owner, ttl))

    async def count(self, key: str, member: str, ttl: float) -> int:
        return int(await self._run(self._count, key, member, ttl))

    async def _run(self, script: Any, key: str, value: str, ttl: float) -> Any:
        try:
            return await script(
                keys=[f"{self._prefix}:ledger:{hashed(key)}"], args=[value, max(1, int(ttl * 1000))]
            )
        except (*OUTAGE, RedisError) as exc:
            # The turn waits for Redis (engine's outage path) rather than mailing blind.
            raise StoreUnavailable(f"reply ledger unreachable: {exc}") from exc

    async def close(self) -> None:
        await self._r.aclose()
