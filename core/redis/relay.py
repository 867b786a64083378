"""The relay over Redis pub/sub: every `serve` process hears every frame and delivers those for
sockets it holds."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from core.errors import StoreUnavailable
from core.ports import Handler
from core.redis.client import OUTAGE

log = structlog.get_logger(__name__)


class RedisRelay:
    """Pub/sub is at-most-once: a frame published while a `serve` process is reconnecting is not
    seen by it. That is acceptable for the web chat (the socket itself is just as fragile); the
    turn's state and replies are in the session either way."""

    def __init__(self, redis: Redis, *, prefix: str = "gateway"):
        self._r = redis
        self._prefix = prefix
        self._tasks: list[asyncio.Task[None]] = []

    def _topic(self, topic: str) -> str:
        return f"{self._prefix}:relay:{topic}"

    async def publish(self, topic: str, message: bytes) -> None:
        try:
            await self._r.publish(self._topic(topic), message)
        except (*OUTAGE, RedisError) as exc:
            raise StoreUnavailable(f"relay publish failed: {exc}") from exc

    async def subscribe(self, topic: str, handler: Handler) -> None:
        ready = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._listen(self._topic(topic), handler, ready)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5.0)

    async def _listen(self, channel: str, handler: Handler, ready: asyncio.Event) -> None:
        """Subscribe, and subscribe again after an outage, until closed."""
        while True:
            pubsub: PubSub = self._r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                ready.set()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None and msg["type"] == "message":
                        try:
                            await handler(msg["data"])
                        except Exception as exc:  # noqa: BLE001 - one bad frame, go on
                            log.warning("relay.handler_failed", error=repr(exc))
            except (*OUTAGE, RedisError) as exc:
                log.warning("relay.reconnecting", error=str(exc))
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def close(self) -> None:
        """Stops listening and closes the client: the relay owns its connection (pub/sub holds
        one of its own anyway)."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._r.aclose()
