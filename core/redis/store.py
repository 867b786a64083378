"""Sessions and the sent-log in Redis: one key per conversation with expiry, written atomically
and never back in time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import StaleSession, StoreUnavailable
from core.keys import hashed
from core.redis.client import OUTAGE
from core.session import SESSION_FORMAT, Session

_SAVE = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'rev') or '-1')
if cur >= tonumber(ARGV[1]) then return cur end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'v', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return -1
"""


class RedisStore:
    """A hash per conversation: `rev` (the session's revision), `v` (the format), `data` (the
    JSON). One Lua script checks the revision and writes both with the expiry, so a reader sees
    the old session or the new one, never half, and a stale writer cannot go back in time: the
    revision is the fencing token of the ordering scheme (see `core.redis.queue`)."""

    def __init__(self, redis: Redis, *, prefix: str = "gateway", ttl: float = 1800.0):
        self._r = redis
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl * 1000))
        self._save = redis.register_script(_SAVE)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:session:{hashed(key)}"

    async def load(self, key: str) -> Session | None:
        try:
            fmt, blob = await self._r.hmget(self._key(key), ["v", "data"])
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"session load failed: {exc}") from exc
        if blob is None or fmt is None or int(fmt) != SESSION_FORMAT:
            return None
        return Session.model_validate_json(blob)

    async def save(self, session: Session) -> None:
        try:
            cur: Any = await self._save(
                keys=[self._key(session.key)],
                args=[session.revision, session.format, session.model_dump_json(), self._ttl_ms],
            )
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"session save failed: {exc}") from exc
        if int(cur) != -1:
            raise StaleSession(
                f"session {session.key} revision {session.revision} is not newer than the "
                f"stored {int(cur)}"
            )

    async def delete(self, key: str) -> None:
        try:
            await self._r.delete(self._key(key))
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"session delete failed: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._r.ping()
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"redis unreachable: {exc}") from exc

    async def close(self) -> None:
        """The connection is shared with the other Redis stores; `gateway.storage.Storage`
        closes it."""
        return None


class RedisSentLog:
    """Reply keys `{entry}:{index}` that went out, remembered for `ttl` seconds."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "gateway",
        ttl: float = 86400.0,
        mark_patience: float = 30.0,
    ):
        self._r = redis
        self._prefix = prefix
        self._ttl = max(1, int(ttl))
        self.mark_patience = mark_patience

    async def seen(self, key: str) -> bool:
        try:
            return bool(await self._r.exists(f"{self._prefix}:sent:{key}"))
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"sent-log read failed: {exc}") from exc

    async def mark(self, key: str) -> None:
        """Retried through a short outage: the reply went out already, and a mark that is lost
        would make the retried turn send it a second time."""
        deadline = time.monotonic() + self.mark_patience
        delay = 0.1
        while True:
            try:
                await self._r.set(f"{self._prefix}:sent:{key}", b"1", ex=self._ttl)
                return
            except (*OUTAGE, RedisError) as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(f"sent-log write failed: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
