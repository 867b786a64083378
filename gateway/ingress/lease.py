"""A lease in Redis that lets exactly one process of many do a job (poll Telegram): taken with
SET NX PX, kept by renewing it well inside its lifetime, given back on exit. A process that
dies loses it when it expires; another then takes over."""

from __future__ import annotations

import contextlib
import secrets

from redis.asyncio import Redis

from core.redis.client import OUTAGE

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLease:
    """`acquire` and `renew` answer whether this process holds the lease now; a Redis outage
    counts as not holding it (the holder stops, nobody can be sure of being alone)."""

    def __init__(self, redis: Redis, key: str, ttl: float, *, owned: bool = False) -> None:
        """`owned`: the client is this lease's own, closed by `release`."""
        self._redis = redis
        self._owned = owned
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self._token = secrets.token_hex(16).encode()
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> bool:
        try:
            if await self._redis.set(self.key, self._token, nx=True, px=self.ttl_ms):
                return True
            return bool(await self._renew(keys=[self.key], args=[self._token, self.ttl_ms]))
        except OUTAGE:
            return False

    async def renew(self) -> bool:
        try:
            return bool(await self._renew(keys=[self.key], args=[self._token, self.ttl_ms]))
        except OUTAGE:
            return False

    async def release(self) -> None:
        with contextlib.suppress(*OUTAGE):  # it expires on its own
            await self._release(keys=[self.key], args=[self._token])
        if self._owned:
            await self._redis.aclose()
