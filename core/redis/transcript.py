"""The web chat's transcript in Redis, shared by every `serve` and `worker` process."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import StoreUnavailable
from core.keys import hashed
from core.redis.client import OUTAGE

_ADD = """
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1] .. ':' .. seq)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return seq
"""


class RedisTranscript:
    """A sorted set per conversation, scored by a number one counter gives every entry (so it
    only grows), with the session's expiry; only the newest `keep` entries are kept. The entry
    carries its number, so equal texts stay two members."""

    def __init__(
        self, redis: Redis, *, prefix: str = "gateway", ttl: float = 1800.0, keep: int = 200
    ) -> None:
        self._r = redis
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl * 1000))
        self._keep = keep
        self._add = redis.register_script(_ADD)

    def _key(self, conversation: str) -> str:
        return f"{self._prefix}:transcript:{hashed(conversation)}"

    async def add(self, conversation: str, entry: dict[str, Any]) -> int:
        blob = json.dumps(entry, ensure_ascii=False)
        try:
            seq: Any = await self._add(
                keys=[self._key(conversation), f"{self._prefix}:transcript-seq"],
                args=[blob, self._ttl_ms, self._keep],
            )
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"transcript add failed: {exc}") from exc
        return int(seq)

    async def since(
        self, conversation: str, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        try:
            rows: list[Any] = await self._r.zrevrangebyscore(
                self._key(conversation), "+inf", f"({after}", start=0, num=limit, withscores=True
            )
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"transcript read failed: {exc}") from exc
        out = []
        for row in reversed(rows):
            member, score = row
            text = member.decode() if isinstance(member, bytes) else str(member)
            blob = text.rsplit(":", 1)[0]  # the member ends with ":<seq>"
            out.append({**json.loads(blob), "seq": int(score)})
        return out

    async def close(self) -> None:
        return None
