"""The web chat: a page at /chat and its WebSocket at /chat/ws."""

from __future__ import annotations

import html
import weakref
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from adapters.webchat import Frame
from config.settings import Settings
from core.errors import PayloadError, QueueUnavailable
from core.models import Button
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
THEME = "theme.css"
"""The shop's colours (WEBCHAT_COLOR), made from the settings: a style sheet of its own, since
the page's policy allows no inline style."""


SOCKETS = web.AppKey("webchat_sockets", weakref.WeakSet[web.WebSocketResponse])
"""The open web chat sockets, closed when the server stops."""


async def close_sockets(app: web.Application) -> None:
    """On shutdown: a page's socket would otherwise hold the stop for SHUTDOWN_TIMEOUT. Closed
    as going away, the page reconnects by itself (to this server once it is back, or another);
    what it sent and was not acknowledged it sends again."""
    for ws in list(app.get(SOCKETS, ())):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the server is restarting")


@runtime_checkable
class Menu(Protocol):
    """A dialogue that can say what the bot can do (`core.dialogue.runner.FlowRunner`)."""

    def menu(self) -> tuple[Button, ...]: ...


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/chat", headers=BROWSER_HEADERS)


async def page(request: web.Request) -> web.Response:
    title = html.escape(request.app[SERVICES].settings.webchat_title)
    text = (STATIC / "chat.html").read_text(encoding="utf-8").replace("{{ title }}", title)
    return web.Response(text=text, content_type="text/html", headers=BROWSER_HEADERS)


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == THEME:
        css = theme(request.app[SERVICES].settings)
        return web.Response(text=css, content_type="text/css", headers=BROWSER_HEADERS)
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers=BROWSER_HEADERS)


def theme(settings: Settings) -> str:
    """The accent colour, and text on it dark or light, whichever reads (WCAG luminance)."""
    accent = settings.webchat_color.lower()
    r, g, b = (int(accent[i : i + 2], 16) / 255 for i in (1, 3, 5))
    lum = sum(
        w * (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
        for w, c in ((0.2126, r), (0.7152, g), (0.0722, b))
    )
    on_accent = "#1d2430" if lum > 0.4 else "#ffffff"
    return f":root {{ --accent: {accent}; --on-accent: {on_accent}; }}\n"


def welcome(s: Services) -> Frame:
    buttons = s.dialogue.menu() if isinstance(s.dialogue, Menu) else ()
    return {
        "text": s.settings.webchat_welcome,
        "buttons": [{"label": b.label, "payload": b.payload} for b in buttons],
    }


def _after(value: str | None) -> int:
    """The last transcript number the page has (0: a new page)."""
    return int(value) if value and value.isdigit() and len(value) < 19 else 0


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
    request.app[SOCKETS].add(ws)
    guard = request.app[GUARD]
    visitor = await guard.open(request.query.get("session"), guard.address(request))
    if isinstance(visitor, Refusal):
        s.metrics.rejected.labels(channel="webchat", reason="sessions_limited").inc()
        await ws.send_json(visitor.frame())
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many new chats")
        return ws
    session = visitor.session
    held: list[Frame] | None = []

    async def sink(frame: Frame) -> None:
        if held is not None:  # the hello goes first
            held.append(frame)
        else:
            await ws.send_json(frame)

    # Attached before the transcript is read, so nothing falls between the two (the page
    # drops a frame it already has, by its number).
    kept = chat.attach(session, sink)
    after = _after(request.query.get("after"))
    hello: dict[str, Any] = visitor.hello()
    hello["history"] = await chat.history(session, after)
    if after == 0:
        hello["welcome"] = welcome(s)
    await ws.send_json(hello)
    while held:
        kept.append(held.pop(0))
    held = None
    for frame in kept:
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
    client_id = inbound.meta.get("client_id")
    # Kept before it is queued, so it comes before the replies in the transcript (a page that
    # sends a message again after a reconnect shows it once: the entry has its id).
    await chat.remember(inbound)
    try:
        fresh = await s.storage.queue.put(inbound)
    except QueueUnavailable:
        s.metrics.errors.labels(stage="enqueue").inc()
        frame: Frame = {"error": "the bot is busy right now; please send that again shortly"}
        if client_id:
            frame["failed"] = client_id
        await ws.send_json(frame)
        return
    if fresh:
        s.metrics.counted_in("webchat")
    if client_id:  # the page's pending mark comes off
        await ws.send_json({"ack": client_id})
