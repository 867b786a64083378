"""A fake helpdesk on loopback: the endpoint `HANDOFF_WEBHOOK_URL` posts each handoff record
to. It keeps every record as posted, with its `Idempotency-Key` header under `header`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.support.fakes import serve


@pytest.fixture
async def helpdesk() -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """(the records posted so far, the webhook's URL)."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({"header": request.headers.get("Idempotency-Key"), **await request.json()})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/handoff", handle)
    async with serve(app) as base:
        yield seen, f"{base}/handoff"
