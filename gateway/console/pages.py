"""The console's page (one HTML file and its vendored script and style sheet, no build step)
and its live socket: news of the queue and of conversations, for agents signed in."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog
from aiohttp import WSMsgType, web

from gateway.console.auth import caller, desk_of, same_origin
from gateway.console.roles import READ
from gateway.security import BROWSER_HEADERS

log = structlog.get_logger(__name__)

STATIC = Path(__file__).with_name("static")
STATIC_FILES = frozenset(p.name for p in STATIC.iterdir() if p.is_file())
HEADERS = {**BROWSER_HEADERS, "Cache-Control": "no-store", "Referrer-Policy": "same-origin"}


async def page(request: web.Request) -> web.FileResponse:
    desk_of(request)
    return web.FileResponse(STATIC / "console.html", headers=HEADERS)


async def role_page(
    request: web.Request, permission: str, name: str, refusal: str
) -> web.StreamResponse:
    """A console page only a role with `permission` gets: signed out, the console's own page
    signs in; another role reads `refusal` (403)."""
    try:
        await caller(request, permission)
    except web.HTTPUnauthorized:
        raise web.HTTPFound("/console", headers=BROWSER_HEADERS) from None
    except web.HTTPForbidden:
        raise web.HTTPForbidden(text=refusal, headers=BROWSER_HEADERS) from None
    return web.FileResponse(STATIC / name, headers=HEADERS)


async def static(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES or name.endswith(".html"):
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers=BROWSER_HEADERS)


async def socket(request: web.Request) -> web.WebSocketResponse:
    if not same_origin(request):
        raise web.HTTPForbidden(text="this page's origin may not open the console")
    await caller(request, READ)
    desk = desk_of(request)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    news = desk.events.listen()

    async def forward() -> None:
        while True:
            await ws.send_json(await news.get())

    sender = asyncio.create_task(forward())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                # The page pings while open: the agent counts as online.
                with contextlib.suppress(web.HTTPException):
                    await caller(request, READ)
                await ws.send_str("pong")
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        desk.events.forget(news)
    return ws


def register(app: web.Application) -> None:
    app.router.add_get("/console", page)
    app.router.add_get("/console/", page)
    app.router.add_get("/console/static/{name}", static)
    app.router.add_get("/console/ws", socket)
