"""The web chat: a page at /chat and its WebSocket at /chat/ws."""

from __future__ import annotations

from pathlib import Path

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from adapters.webchat import Frame
from core.errors import PayloadError, QueueUnavailable
from gateway.security import BROWSER_HEADERS, origin_allowed
from gateway.services import SERVICES, Services
from gateway.webchat_guard import GUARD, Refusal, Visitor, WebChatGuard

log = structlog.get_logger(__name__)

STATIC = Path(__file__).with_name("static")
MAX_FRAME_CHARS = 4000
_SOCKET_MAX_BYTES = 4 * 1024 * 1024
"""Frames up to this size reach us and get an error frame; larger ones close the socket (1009)."""


STATIC_FILES = frozenset(p.name for p in STATIC.iterdir() if p.is_file())
"""The page's script and style sheet, served by name (nothing else of the folder, no paths)."""


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/chat", headers=BROWSER_HEADERS)


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "chat.html", headers=BROWSER_HEADERS)


async def static(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers=BROWSER_HEADERS)


async def socket(request: web.Request) -> web.WebSocketResponse:
    s = request.app[SERVICES]
    chat = s.webchat
    if chat is None:
        raise web.HTTPNotFound(text="the web chat is off")
    if not origin_allowed(request, s.settings.webchat_allowed_origins, s.settings.public_base_url):
        # Another site's page would ride a visitor's browser into the chat (and its session).
        s.metrics.rejected.labels(channel="webchat", reason="origin").inc()
        origin = request.headers["Origin"]
        log.warning("webchat.rejected", reason="origin not allowed", origin=origin)
        raise web.HTTPForbidden(text="this page's origin may not open the chat")
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=_SOCKET_MAX_BYTES)
    await ws.prepare(request)
    guard = request.app[GUARD]
    visitor = await guard.open(request.query.get("session"), guard.address(request))
    if isinstance(visitor, Refusal):
        s.metrics.rejected.labels(channel="webchat", reason="sessions_limited").inc()
        await ws.send_json(visitor.frame())
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many new chats")
        return ws
    session = visitor.session

    async def sink(frame: Frame) -> None:
        await ws.send_json(frame)

    await ws.send_json(visitor.hello())
    for frame in chat.attach(session, sink):
        await ws.send_json(frame)
    with structlog.contextvars.bound_contextvars(
        channel="webchat", conversation=f"webchat:{session}"
    ):
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data: str = msg.data
                elif msg.type == WSMsgType.BINARY:
                    try:
                        data = msg.data.decode("utf-8")
                    except UnicodeDecodeError:
                        await ws.send_json({"error": "frame is not valid UTF-8"})
                        continue
                else:
                    continue
                await _handle(ws, s, guard, visitor, data)
        finally:
            chat.detach(session, sink)
    return ws


async def _handle(
    ws: web.WebSocketResponse, s: Services, guard: WebChatGuard, visitor: Visitor, data: str
) -> None:
    chat = s.webchat
    assert chat is not None
    if len(data) > MAX_FRAME_CHARS * 4:
        s.metrics.rejected.labels(channel="webchat", reason="too_large").inc()
        await ws.send_json({"error": f"message too long: at most {MAX_FRAME_CHARS} characters"})
        return
    answer = guard.check(visitor, data)
    if answer is not None:  # the challenge is still open: solved now, or not yet
        await ws.send_json(answer)
        return
    try:
        inbound = chat.inbound(visitor.session, data, MAX_FRAME_CHARS)
    except PayloadError as exc:
        s.metrics.rejected.labels(channel="webchat", reason="malformed").inc()
        log.info("webchat.rejected", reason=str(exc))
        await ws.send_json({"error": str(exc)})
        return
    refused = await guard.admit(visitor, inbound.event_id)
    if refused is not None:
        s.metrics.rejected.labels(channel="webchat", reason="messages_limited").inc()
        await ws.send_json(refused.frame())
        return
    try:
        fresh = await s.storage.queue.put(inbound)
    except QueueUnavailable:
        s.metrics.errors.labels(stage="enqueue").inc()
        await ws.send_json({"error": "the bot is busy right now; please send that again shortly"})
        return
    if fresh:
        s.metrics.counted_in("webchat")
