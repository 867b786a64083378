"""`POST /webhooks/{channel}`: size check, signature check, parse, durable enqueue, answer at
once. The bot never runs inside the request.

Each configured channel gets a route of its own (`/webhooks/slack`...), whose handler has the
adapter, the queue and the limits bound when the app is built, instead of looked up per request
(the app's services, the route's match, the settings) on the hot path. `/webhooks/{channel}`
catches the rest with a 404 that says what to set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
from aiohttp import web

from core.channel import Claim, WebhookRequest
from core.errors import PayloadError, QueueUnavailable, StoreUnavailable, VerificationError
from core.ports import Channel, ClaimStore
from gateway.channels import FACTORIES, NEEDS
from gateway.services import SERVICES, Services

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PARSE_INLINE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (a thread hop costs more than they do)."""


def public_url(request: web.BaseRequest, base: str | None) -> str:
    """The URL the platform called, as it sent it (Twilio signs it); behind a proxy,
    PUBLIC_BASE_URL says what the scheme and host were. Built from the raw request line, without
    parsing it into a URL object the adapter has no use for."""
    if base:
        return base.rstrip("/") + request.raw_path
    return f"{request.scheme}://{request.host}{request.raw_path}"


class AiohttpRequest(WebhookRequest):
    """An aiohttp request as an adapter sees it. Headers (aiohttp's, case-insensitive already)
    and body are handed over as they are (the body empty for `precheck`, set once read); the
    public URL, the query and the peer address are worked out when an adapter first reads them
    (Twilio and Mailgun do; Slack and Telegram never)."""

    __slots__ = ("_base", "_request")

    def __init__(self, request: web.BaseRequest, body: bytes, base: str | None) -> None:
        self.method = request.method
        self.headers = request.headers
        self.body = body
        self._request = request
        self._base = base

    @property
    def url(self) -> str:
        return public_url(self._request, self._base)

    @property
    def query(self) -> Mapping[str, str]:
        return self._request.query

    @property
    def remote(self) -> str | None:
        return self._request.remote


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def route_webhooks(app: web.Application, services: Services) -> None:
    """`POST /webhooks/<name>` for every configured channel, and the catch-all 404."""
    for name, channel in services.channels.items():
        app.router.add_post(f"/webhooks/{name}", receiver(services, name, channel))
    app.router.add_post("/webhooks/{channel}", not_configured)


async def not_configured(request: web.Request) -> web.Response:
    """A channel that is not configured (the setting that turns it on is named) or unknown."""
    s = request.app[SERVICES]
    name = request.match_info["channel"]
    reason = (
        f"channel {name!r} is not configured: set {NEEDS[name]}"
        if name in NEEDS
        else f"unknown channel {name!r}; known: {', '.join(sorted(FACTORIES))}"
    )
    s.metrics.rejected.labels(channel="unknown", reason="unknown_channel").inc()
    log.warning("webhook.rejected", channel=name, status=404, reason=reason)
    return _error(404, reason)


async def spend(store: ClaimStore, claims: Sequence[Claim], dedupe_ttl: float) -> bool:
    """False when a one-time credential of the request was spent on another request, or on
    this same one longer ago than the dedupe remembers (a platform's retry comes sooner)."""
    for c in claims:
        ttl = dedupe_ttl if c.ttl is None else c.ttl
        if not await store.claim(c.key, c.value, ttl, dedupe_ttl):
            return False
    return True


def receiver(services: Services, name: str, channel: Channel) -> Handler:
    """The handler of `POST /webhooks/<name>`. Every line of `receive` runs on every request,
    so what can be known once (settings, metric handles, the log level) is looked up here;
    `bench/ingress.py` measures what a request costs."""
    limit = services.settings.max_body_bytes
    base = services.settings.public_base_url
    queue = services.storage.queue
    claims = services.storage.claims
    dedupe_ttl = services.settings.dedupe_ttl
    read_timeout = services.settings.body_read_timeout
    # Redis may hang instead of refusing (frozen, swapping): the platform still gets its 503
    # inside its own timeout (Slack's is 3 s). The in-memory queue never waits.
    within = services.settings.enqueue_timeout if services.storage.durable else None
    metrics = services.metrics
    rejected = metrics.rejected
    counted = metrics.messages_in.counts  # a plain dict of ints, collected at scrape time
    counted.setdefault(name, 0)
    # The level is set once at start-up (LOG_LEVEL): looked up here, not per event.
    debug = log.bind().is_enabled_for(logging.DEBUG)

    def unverified(exc: VerificationError, closing: bool = False) -> web.Response:
        rejected.labels(channel=name, reason="unverified").inc()
        log.warning("webhook.rejected", channel=name, status=401, reason=str(exc))
        resp = _error(401, "signature verification failed")
        if closing:  # the body is still coming: not waited for, the connection is not reused
            resp.force_close()
        return resp

    async def receive(request: web.Request) -> web.Response:
        # Credentials carried by the headers (Telegram's secret, Slack's timestamp) first: a
        # request that cannot pass is refused without waiting for its body.
        req = AiohttpRequest(request, b"", base)
        content = request.content
        try:
            channel.precheck(req)
        except VerificationError as exc:
            return unverified(exc, closing=not content.is_eof())
        # The body, refused once it passes `limit` bytes. All of it came with the headers (a
        # webhook's usual size; aiohttp buffers no more than its read-ahead before the handler
        # runs): taken from the buffer as it lies, instead of `request.read()`'s two awaited
        # reads into a bytearray and its copy, which every webhook would pay for. Still
        # arriving: a declared length is refused before reading anything, a chunked body as it
        # streams in (aiohttp's `client_max_size` is the same limit), and a body that takes
        # longer than `read_timeout` (trickled to hold the connection) gets 408.
        body: bytes | None
        if content.is_eof():
            body = content.read_nowait()
        else:
            declared = request.content_length
            try:
                async with asyncio.timeout(read_timeout):
                    body = await request.read() if declared is None or declared <= limit else None
            except web.HTTPRequestEntityTooLarge:
                body = None
            except TimeoutError:
                rejected.labels(channel=name, reason="too_slow").inc()
                log.warning("webhook.rejected", channel=name, status=408, timeout=read_timeout)
                resp = _error(408, f"body not received within {read_timeout:g} s")
                resp.force_close()
                return resp
            except ConnectionError:  # the client hung up mid-body: one line, not a traceback
                rejected.labels(channel=name, reason="disconnected").inc()
                log.info("webhook.disconnected", channel=name)
                return _error(400, "connection lost before the body was read")
        if body is None or len(body) > limit:
            rejected.labels(channel=name, reason="too_large").inc()
            log.warning("webhook.rejected", channel=name, status=413, limit=limit)
            return _error(413, f"body over {limit} bytes")
        req.body = body
        try:
            channel.verify(req)
        except VerificationError as exc:
            return unverified(exc)
        try:
            # A big body (a mail from anyone, relayed by Mailgun) takes milliseconds per
            # kilobyte to read: on a thread, so that other requests are answered meanwhile.
            big = len(body) > PARSE_INLINE_BYTES
            reply = await asyncio.to_thread(channel.parse, req) if big else channel.parse(req)
        except PayloadError as exc:
            rejected.labels(channel=name, reason="malformed").inc()
            log.warning("webhook.rejected", channel=name, status=400, reason=str(exc))
            return _error(400, str(exc))
        if reply.claims:
            try:
                async with asyncio.timeout(within):  # the same bound as the put below
                    fresh_claims = await spend(claims, reply.claims, dedupe_ttl)
            except (StoreUnavailable, TimeoutError) as exc:
                metrics.errors.labels(stage="claim").inc()
                log.error(
                    "webhook.claim_failed",
                    channel=name,
                    status=503,
                    error=str(exc) or f"no answer within {within} s",
                )
                return _error(503, "store unavailable, retry later", **{"Retry-After": "5"})
            if not fresh_claims:
                rejected.labels(channel=name, reason="replayed").inc()
                log.warning("webhook.rejected", channel=name, status=401, reason="replayed")
                return _error(401, "signature verification failed")
        for event in reply.events:
            try:
                if within is None:
                    fresh = await queue.put(event)
                else:
                    # Cut off, the put either happened whole or not at all (one Lua script):
                    # the platform's retry is then taken, or dropped as the duplicate it is.
                    async with asyncio.timeout(within):
                        fresh = await queue.put(event)
            except (QueueUnavailable, TimeoutError) as exc:
                metrics.errors.labels(stage="enqueue").inc()
                log.error(
                    "webhook.enqueue_failed",
                    channel=name,
                    status=503,
                    error=str(exc) or f"no answer within {within} s",
                    event_id=event.event_id,
                )
                return _error(503, "queue unavailable, retry later", **{"Retry-After": "5"})
            if fresh:
                counted[name] += 1
                # Debug only: this is the hot path, and the turn logs the event at info.
                if debug:
                    log.debug("webhook.queued", channel=name, event_id=event.event_id)
            else:
                metrics.duplicates.labels(channel=name).inc()
                log.info("webhook.duplicate", channel=name, event_id=event.event_id)
        if not reply.events and reply.note:
            log.info("webhook.ignored", channel=name, reason=reply.note)
        if not reply.body and reply.status == 200:
            return web.Response()  # the common answer, without building a content type
        return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)

    return receive
