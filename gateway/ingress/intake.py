"""One payload that came over a connection the gateway opened itself (a Socket Mode envelope, a
`getUpdates` update, a mailbox message) into the adapter's own parse and the same queue, with
the same dedupe, as the webhook. No signature is checked: the connection is the credential."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from core.channel import WebhookReply, WebhookRequest
from core.metrics import Metrics
from core.ports import Channel, Queue

log = structlog.get_logger(__name__)

PARSE_INLINE_BYTES = 64 * 1024
"""Payloads up to this size are parsed on the event loop, bigger ones on a thread (as the
webhook does)."""


def platform_request(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    """A payload as the adapter's `parse` reads it from a webhook."""
    return WebhookRequest(
        method="POST", url="", headers={"content-type": content_type}, query={}, body=body
    )


@dataclass(frozen=True, slots=True)
class Taken:
    queued: int = 0
    duplicates: int = 0
    note: str | None = None


@dataclass
class Intake:
    """`take` parses (raising the adapter's `PayloadError`) and puts every event into the queue
    (raising `QueueUnavailable`): when it returns, what the payload carried is durably queued or
    was queued before, so the caller may then acknowledge it to the platform."""

    channel: Channel
    queue: Queue
    metrics: Metrics
    via: str

    async def take(self, req: WebhookRequest) -> Taken:
        big = len(req.body) > PARSE_INLINE_BYTES
        parse = self.channel.parse
        reply = await asyncio.to_thread(parse, req) if big else parse(req)
        return await self.put(reply)

    async def take_with(self, parse: Callable[[], WebhookReply], size: int) -> Taken:
        """For a payload the adapter reads with a parser of its own (a mail's bytes)."""
        reply = await asyncio.to_thread(parse) if size > PARSE_INLINE_BYTES else parse()
        return await self.put(reply)

    async def put(self, reply: WebhookReply) -> Taken:
        name = self.channel.name
        queued = duplicates = 0
        for event in reply.events:
            if await self.queue.put(event):
                queued += 1
                self.metrics.counted_in(name)
                log.debug("ingress.queued", channel=name, via=self.via, event_id=event.event_id)
            else:
                duplicates += 1
                self.metrics.duplicates.labels(channel=name).inc()
                log.info("ingress.duplicate", channel=name, via=self.via, event_id=event.event_id)
        if not reply.events and reply.note:
            log.info("ingress.ignored", channel=name, via=self.via, reason=reply.note)
        return Taken(queued, duplicates, reply.note)


def rejected(metrics: Metrics, channel: str, reason: str) -> None:
    metrics.rejected.labels(channel=channel, reason=reason).inc()


HeaderMap = Mapping[str, str]
