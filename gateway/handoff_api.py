"""POST /api/handoff/{conversation_key}/release: a person hands a conversation back to the bot.

The release goes through the queue as a `/bot` press, so it is handled in order with the
conversation's other messages and the user is told the bot is back. Bearer token required
(`HANDOFF_API_TOKEN`); without one configured the API answers 403."""

from __future__ import annotations

import hmac

from aiohttp import web

from core.errors import QueueUnavailable, StoreUnavailable
from core.models import Inbound, Sender
from gateway.services import SERVICES

ROUTE = "/api/handoff/{conversation_key}/release"


def _authorised(request: web.Request) -> bool:
    token = request.app[SERVICES].settings.handoff_api_token
    if token is None:
        return False
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    # bytes, as sent: a header that is not UTF-8 (kept as surrogate escapes) fails, not raises
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


async def release(request: web.Request) -> web.Response:
    if not _authorised(request):
        return web.json_response({"error": "forbidden"}, status=403)
    services = request.app[SERVICES]
    key = request.match_info["conversation_key"]
    try:
        session = await services.storage.store.load(key)
    except StoreUnavailable:
        return web.json_response({"error": "store unavailable, try again"}, status=503)
    if session is None:
        return web.json_response({"error": "no such conversation"}, status=404)
    if not session.handoff:
        return web.json_response({"released": False, "reason": "not with a person"})
    # One release per state of the conversation: an agent's tool that retries the call (or two
    # agents pressing at once) queues one `/bot`, and the user hears "bot again" once.
    inbound = Inbound(
        event_id=f"handoff-release-{session.created_at:.6f}-{session.revision}",
        conversation=session.conversation,
        sender=Sender(id="handoff-api", name="support agent"),
        payload="/bot",
    )
    try:
        await services.storage.queue.put(inbound)
    except QueueUnavailable:
        return web.json_response({"error": "queue unavailable, try again"}, status=503)
    return web.json_response({"released": True}, status=202)


def register(app: web.Application) -> None:
    app.router.add_post(ROUTE, release)
