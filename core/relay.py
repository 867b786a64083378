"""Relay of outgoing frames between processes: a worker produces a reply, and the process that
holds the user's socket (a `serve` process) delivers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

Handler = Callable[[bytes], Awaitable[None]]


class Relay(Protocol):
    """Fire-and-forget broadcast on a topic to every subscribed process."""

    async def publish(self, topic: str, message: bytes) -> None: ...

    async def subscribe(self, topic: str, handler: Handler) -> None:
        """Start calling `handler` for each message on `topic` (in the background)."""
        ...

    async def close(self) -> None: ...
