"""`POST /api/forget` (admins): erase one customer everywhere, as `gateway forget` does, and say
what was removed where."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.forget import Customer
from gateway.console.api import _body
from gateway.console.auth import Caller, desk_of, error, needs
from gateway.console.roles import FORGET
from gateway.privacy import forget_customer
from gateway.services import SERVICES

MAX_ID = 512
"""A platform's id of a person at most (an e-mail address is the longest)."""


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise error(400, f"`{name}` must be a non-empty string of at most {MAX_ID} characters")
    return value.strip()


@needs(FORGET)
async def forget(request: web.Request, who: Caller) -> web.Response:
    body = await _body(request)
    customer = Customer(_field(body, "channel"), _field(body, "user"))
    erasure = await forget_customer(
        request.app[SERVICES].settings, customer, db=desk_of(request).db
    )
    removed = {kind: n for kind, n in sorted(erasure.removed.items()) if n}
    return web.json_response(
        {
            "found": bool(removed),
            "removed": removed,
            "notes": erasure.notes,
            "report": erasure.report(),
        }
    )


def register(app: web.Application) -> None:
    app.router.add_post("/api/forget", forget)
