"""`POST /webhooks/{channel}`: size check, signature check, parse, durable enqueue, answer at
once. The bot never runs inside the request."""

from __future__ import annotations

import structlog
from aiohttp import web

from core.channel import PayloadError, VerificationError, WebhookRequest
from core.errors import QueueUnavailable
from gateway.channels import FACTORIES, NEEDS
from gateway.keys import SERVICES

log = structlog.get_logger(__name__)


class BodyTooLarge(Exception):
    pass


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes: a declared length before reading
    anything, a chunked body as it streams in (aiohttp's `client_max_size` is set to the same
    limit by `create_app`)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge from None
    if len(body) > limit:
        raise BodyTooLarge
    return body


def public_url(request: web.Request, base: str | None) -> str:
    """The URL the platform called, as it sent it (Twilio signs it); behind a proxy,
    PUBLIC_BASE_URL says what the scheme and host were. Built from the raw request line: a
    parsed `request.url` costs more than the rest of the request's handling."""
    if base:
        return base.rstrip("/") + request.raw_path
    return f"{request.scheme}://{request.host}{request.raw_path}"


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


async def receive(request: web.Request) -> web.Response:
    """The hot path: every line here is paid per request (measured by `bench/ingress.py`)."""
    s = request.app[SERVICES]
    name = request.match_info["channel"]
    channel = s.channels.get(name)
    if channel is None:
        reason = (
            f"channel {name!r} is not configured: set {NEEDS[name]}"
            if name in NEEDS
            else f"unknown channel {name!r}; known: {', '.join(sorted(FACTORIES))}"
        )
        s.metrics.rejected.labels(channel="unknown", reason="unknown_channel").inc()
        log.warning("webhook.rejected", channel=name, status=404, reason=reason)
        return _error(404, reason)
    try:
        body = await read_limited(request, s.settings.max_body_bytes)
    except BodyTooLarge:
        s.metrics.rejected.labels(channel=name, reason="too_large").inc()
        log.warning("webhook.rejected", channel=name, status=413, limit=s.settings.max_body_bytes)
        return _error(413, f"body over {s.settings.max_body_bytes} bytes")
    req = WebhookRequest(
        method=request.method,
        url=public_url(request, s.settings.public_base_url),
        headers=request.headers,  # case-insensitive already: no copy
        query=request.query,
        body=body,
        remote=request.remote,
    )
    try:
        channel.verify(req)
    except VerificationError as exc:
        s.metrics.rejected.labels(channel=name, reason="unverified").inc()
        log.warning("webhook.rejected", channel=name, status=401, reason=str(exc))
        return _error(401, "signature verification failed")
    try:
        reply = channel.parse(req)
    except PayloadError as exc:
        s.metrics.rejected.labels(channel=name, reason="malformed").inc()
        log.warning("webhook.rejected", channel=name, status=400, reason=str(exc))
        return _error(400, str(exc))
    for event in reply.events:
        try:
            fresh = await s.backends.queue.put(event)
        except QueueUnavailable as exc:
            s.metrics.errors.labels(stage="enqueue").inc()
            log.error(
                "webhook.enqueue_failed",
                channel=name,
                status=503,
                error=str(exc),
                event_id=event.event_id,
            )
            return _error(503, "queue unavailable, retry later", **{"Retry-After": "5"})
        if fresh:
            s.metrics.counted_in(name)
            # Debug only: this is the hot path, and the turn logs the event at info.
            log.debug("webhook.queued", channel=name, event_id=event.event_id)
        else:
            s.metrics.duplicates.labels(channel=name).inc()
            log.info("webhook.duplicate", channel=name, event_id=event.event_id)
    if not reply.events and reply.note:
        log.info("webhook.ignored", channel=name, reason=reply.note)
    if not reply.body and reply.status == 200:
        return web.Response()  # the common answer, without building a content type
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)
