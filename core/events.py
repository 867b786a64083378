"""Live news for the console ("conversation 12 changed", "the queue changed"), to the sockets
of every `serve` process: over the relay (Redis pub/sub) when there is one, in this process
otherwise. At most once: a console that missed one reloads what it shows on the next."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import structlog

from core.ports import Relay

log = structlog.get_logger(__name__)

TOPIC = "desk"


class DeskEvents:
    """`publish` from the worker or an agent's action; `listen` for each console socket."""

    def __init__(self, relay: Relay | None = None, backlog: int = 256):
        self._relay = relay
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._backlog = backlog

    async def start(self) -> None:
        if self._relay is not None:
            await self._relay.subscribe(TOPIC, self._heard)

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.close()

    async def publish(self, kind: str, **fields: Any) -> None:
        event = {"type": kind, **fields}
        if self._relay is None:
            self._deliver(event)
            return
        try:
            await self._relay.publish(TOPIC, orjson.dumps(event))
        except Exception as exc:  # noqa: BLE001 - live news is best effort; the store has it
            log.warning("desk.publish_failed", error=str(exc))

    async def _heard(self, data: bytes) -> None:
        event = orjson.loads(data)
        if isinstance(event, dict):
            self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        for q in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck socket misses news
                q.put_nowait(event)

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._backlog)
        self._listeners.add(q)
        return q

    def forget(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(q)
