"""Inbound flood control: too many messages from one sender in a window are not all answered."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

import structlog

from core.models import Outbound
from core.outbox import Outbox
from core.ports import Delivery, Queue, SenderLimit, Verdict

log = structlog.get_logger(__name__)


class MemorySenderLimit:
    """A sliding window per sender in one process."""

    def __init__(self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        """Least recently heard senders first, so those silent for a window are forgotten
        cheaply: without that, every visitor ever seen stayed in memory."""
        self._warned: dict[str, float] = {}

    async def hit(self, sender_key: str, event_key: str) -> Verdict:
        now = self._clock()
        self._forget(now)
        hits = self._hits.pop(sender_key, None) or deque()
        self._hits[sender_key] = hits
        while hits and hits[0][0] <= now - self.window:
            hits.popleft()
        if all(k != event_key for _, k in hits):
            hits.append((now, event_key))
        if len(hits) <= self.limit:
            return Verdict.ALLOW
        if self._warned.get(sender_key, -1e18) > now - self.window:
            return Verdict.DROP
        self._warned[sender_key] = now
        return Verdict.WARN

    def _forget(self, now: float) -> None:
        while self._hits:
            sender, hits = next(iter(self._hits.items()))
            if hits and hits[-1][0] > now - self.window:
                return
            del self._hits[sender]
            self._warned.pop(sender, None)


SLOW_DOWN = "You are sending messages faster than I can read them. Please slow down a little."


async def screen(
    limit: SenderLimit, batch: Sequence[Delivery], *, outbox: Outbox, queue: Queue
) -> list[Delivery]:
    """The events of `batch` to handle. Over the limit, the first event gets one "slow down"
    reply (idempotent per entry, like every reply) and the rest are acknowledged unanswered."""
    keep: list[Delivery] = []
    for d in batch:
        sender = f"{d.inbound.channel}:{d.inbound.sender.id}"
        verdict = await limit.hit(sender, d.inbound.dedupe_key)
        if verdict is Verdict.ALLOW:
            keep.append(d)
            continue
        log.warning("sender.flood", verdict=verdict.value, entry=d.entry_id)
        if verdict is Verdict.WARN:
            reply = Outbound(conversation=d.inbound.conversation, text=SLOW_DOWN)
            await outbox.deliver(f"{d.entry_id}:slow", reply)
        await queue.ack([d])
    return keep
