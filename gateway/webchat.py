"""The web chat: a page at /chat and its WebSocket at /chat/ws."""

from __future__ import annotations

import uuid
from pathlib import Path

import structlog
from aiohttp import WSMsgType, web

from adapters.webchat import Frame, valid_session
from core.channel import PayloadError
from core.errors import QueueUnavailable
from gateway.keys import SERVICES
from gateway.services import Services

log = structlog.get_logger(__name__)

STATIC = Path(__file__).with_name("static")
MAX_FRAME_CHARS = 4000
_SOCKET_MAX_BYTES = 4 * 1024 * 1024
"""Frames up to this size reach us and get an error frame; larger ones close the socket (1009)."""


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/chat")


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "chat.html")


async def socket(request: web.Request) -> web.WebSocketResponse:
    s = request.app[SERVICES]
    chat = s.webchat
    if chat is None:
        raise web.HTTPNotFound(text="the web chat is off")
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=_SOCKET_MAX_BYTES)
    await ws.prepare(request)
    session = valid_session(request.query.get("session")) or uuid.uuid4().hex

    async def sink(frame: Frame) -> None:
        await ws.send_json(frame)

    await ws.send_json({"session": session})
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
                await _handle(ws, s, session, data)
        finally:
            chat.detach(session, sink)
    return ws


async def _handle(ws: web.WebSocketResponse, s: Services, session: str, data: str) -> None:
    chat = s.webchat
    assert chat is not None
    if len(data) > MAX_FRAME_CHARS * 4:
        s.metrics.rejected.labels(channel="webchat", reason="too_large").inc()
        await ws.send_json({"error": f"message too long: at most {MAX_FRAME_CHARS} characters"})
        return
    try:
        inbound = chat.inbound(session, data, MAX_FRAME_CHARS)
    except PayloadError as exc:
        s.metrics.rejected.labels(channel="webchat", reason="malformed").inc()
        log.info("webchat.rejected", reason=str(exc))
        await ws.send_json({"error": str(exc)})
        return
    try:
        fresh = await s.backends.queue.put(inbound)
    except QueueUnavailable:
        s.metrics.errors.labels(stage="enqueue").inc()
        await ws.send_json({"error": "the bot is busy right now; please send that again shortly"})
        return
    if fresh:
        s.metrics.counted_in("webchat")
