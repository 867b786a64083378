"""Who is asking: an agent's session cookie (with its CSRF token on every change) or an API
token (`Authorization: Bearer`), the role checked on every call; sign-in with one answer for a
wrong password and an unknown agent, slowed down after a few failures, refused after many."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from core.conversations import Agent
from core.keys import hidden
from gateway.console.roles import allowed
from gateway.desk import Desk
from gateway.security import origin_allowed
from gateway.services import SERVICES

log = structlog.get_logger(__name__)

COOKIE = "console_session"
SIGNIN: web.AppKey[dict[str, float]] = web.AppKey("console_seen", dict)
"""When this process last marked each agent as seen (agent id → time), to write it at most
every `SEEN_EVERY` seconds."""
SEEN_EVERY = 20.0
SLOW_AFTER = 3
"""Failed sign-ins for one name within `FAIL_WINDOW` before each answer is slowed down."""
SLOWDOWN = 2.0
FAIL_WINDOW = 900.0
ATTEMPTS_PER_ADDRESS = 30
"""Sign-in attempts one client address may make within `FAIL_WINDOW`; then 429."""
WRONG = "wrong name or password"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Caller:
    agent: Agent
    csrf: str
    kind: str


def desk_of(request: web.Request) -> Desk:
    desk = request.app[SERVICES].desk
    if desk is None:
        raise web.HTTPNotFound(text="the console is off")
    return desk


def error(status: int, message: str, /, **extra: Any) -> web.HTTPException:
    cls = web.HTTPException
    for sub in (
        web.HTTPBadRequest, web.HTTPUnauthorized, web.HTTPForbidden, web.HTTPNotFound,
        web.HTTPConflict, web.HTTPTooManyRequests, web.HTTPBadGateway, web.HTTPServiceUnavailable,
    ):  # fmt: skip
        if sub.status_code == status:
            cls = sub
    body = web.json_response({"error": message, **extra}).text
    return cls(text=body, content_type="application/json")


def _secret(request: web.Request) -> tuple[str | None, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None, "token"
    return request.cookies.get(COOKIE), "cookie"


async def caller(request: web.Request, permission: str) -> Caller:
    """The signed-in agent allowed `permission`; 401 without a valid session or token, 403
    with a role that may not (nothing changed either way)."""
    desk = desk_of(request)
    secret, via = _secret(request)
    if not secret:
        raise error(401, "sign in first")
    found = await desk.agents.session(secret)
    if found is None or found[2] != via:
        raise error(401, "sign in first")
    agent, csrf, kind = found
    if kind == "cookie" and request.method in UNSAFE:
        given = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), csrf.encode()):
            raise error(403, "missing or wrong CSRF token")
        if not same_origin(request):
            raise error(403, "this page's origin may not act in the console")
    if not allowed(agent.role, permission):
        raise error(403, f"the {agent.role} role may not {permission.replace('_', ' ')}")
    await _mark_seen(request, desk, agent)
    return Caller(agent, csrf, kind)


def same_origin(request: web.Request) -> bool:
    settings = request.app[SERVICES].settings
    return origin_allowed(request, (), settings.public_base_url)


async def _mark_seen(request: web.Request, desk: Desk, agent: Agent) -> None:
    seen = request.app[SIGNIN]
    now = time.monotonic()
    if now - seen.get(agent.id, -SEEN_EVERY) >= SEEN_EVERY:
        seen[agent.id] = now
        await desk.agents.seen(agent.id)


def secure(request: web.Request) -> bool:
    base = request.app[SERVICES].settings.public_base_url or ""
    return request.secure or base.startswith("https://")


async def sign_in(request: web.Request) -> web.Response:
    desk = desk_of(request)
    if request.content_type != "application/json" or not same_origin(request):
        # A form posted from another site cannot be JSON without the browser asking first.
        raise error(403, "sign in from the console page")
    try:
        body = await request.json()
        name, password = str(body["name"])[:64], str(body["password"])[:1024]
    except (ValueError, KeyError, TypeError):
        raise error(400, "send {name, password} as JSON") from None
    services = request.app[SERVICES]
    limits = services.storage.limits
    address = request.remote or "?"
    wait = await limits.hit(
        f"console:signin:{hidden(address)}", ATTEMPTS_PER_ADDRESS, FAIL_WINDOW, uuid.uuid4().hex
    )
    if wait > 0:
        log.warning("console.signin_limited", retry_after=round(wait))
        raise web.HTTPTooManyRequests(
            text='{"error": "too many sign-in attempts; try again later"}',
            content_type="application/json",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    agent = await desk.agents.verify(name, password)
    if agent is None:
        over = await limits.hit(
            f"console:failed:{hidden(name)}", SLOW_AFTER, FAIL_WINDOW, uuid.uuid4().hex
        )
        if over > 0:
            await asyncio.sleep(SLOWDOWN)
        log.info("console.signin_failed")
        raise error(401, WRONG)
    secret, csrf = await desk.agents.start_session(
        agent.id, "cookie", services.settings.console_session_ttl
    )
    await desk.agents.seen(agent.id)
    log.info("console.signed_in", agent=agent.name)
    resp = web.json_response({"name": agent.name, "role": agent.role, "csrf": csrf})
    resp.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="Strict",
        secure=secure(request),
        path="/",
        max_age=int(services.settings.console_session_ttl),
    )
    return resp


async def sign_out(request: web.Request) -> web.Response:
    who = await caller(request, "read")
    secret, _ = _secret(request)
    if secret and who.kind == "cookie":
        await desk_of(request).agents.end_session(secret)
    resp = web.json_response({"signed_out": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


Handler = Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]


def needs(
    permission: str,
) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Decorator: the handler runs only for a caller with `permission`."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def checked(request: web.Request) -> web.StreamResponse:
            return await handler(request, await caller(request, permission))

        checked.__name__ = handler.__name__
        return checked

    return wrap
