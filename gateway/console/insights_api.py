"""The insights page (/console/insights), its figures (`GET /api/insights`) and the export of
the recorded turns (`GET /api/insights/export`): for the roles allowed insights, checked on
every request, the page's own too."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import get_args

from aiohttp import web

from core.insights import PERIODS, Period, report
from core.turn_export import FORMATS, Format, csv_header, line, record
from gateway.console.api import _when as when
from gateway.console.auth import Caller, desk_of, error, needs
from gateway.console.pages import STATIC, role_page
from gateway.console.roles import INSIGHTS
from gateway.security import BROWSER_HEADERS

DEFAULT_DAYS = 7
"""Days the insights and the export cover when `since` is not given."""
MAX_DAYS = 92
"""The longest range the insights read at once (its turns are counted in memory)."""
MAX_EXPORT_DAYS = 366
"""The longest range one export streams (it holds one batch of turns at a time)."""
CHANNEL_CAP = 32
FLUSH_AT = 64 * 1024
VENDOR = STATIC / "vendor"
VENDOR_FILES = frozenset(p.name for p in VENDOR.iterdir() if p.is_file())


def _range(request: web.Request, longest: int) -> tuple[float, float, str | None]:
    q = request.query
    until = when(q.get("until"), "until") or time.time()
    since = when(q.get("since"), "since")
    if since is None:
        since = until - DEFAULT_DAYS * 86_400
    if since >= until:
        raise error(400, "`since` must be before `until`")
    if until - since > longest * 86_400:
        raise error(400, f"at most {longest} days at a time")
    channel = q.get("channel") or None
    if channel is not None and len(channel) > CHANNEL_CAP:
        raise error(400, "`channel` is the name of a channel")
    return since, until, channel


@needs(INSIGHTS)
async def insights(request: web.Request, who: Caller) -> web.Response:
    since, until, channel = _range(request, MAX_DAYS)
    period = request.query.get("period", "day")
    if period not in PERIODS:
        raise error(400, "`period` is day or week")
    store = desk_of(request).conversations
    turns = await store.turn_stats(since, until, channel)
    period_: Period = "week" if period == "week" else "day"
    return web.json_response(
        {
            "since": since,
            "until": until,
            "period": period_,
            "channel": channel,
            **report(turns, since, until, period_),
        }
    )


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


@needs(INSIGHTS)
async def export(request: web.Request, who: Caller) -> web.StreamResponse:
    since, until, channel = _range(request, MAX_EXPORT_DAYS)
    fmt = request.query.get("format", "csv")
    if fmt not in get_args(Format):
        raise error(400, "`format` is csv or jsonl")
    fmt_: Format = "jsonl" if fmt == "jsonl" else "csv"
    name = f"turns-{_day(since)}-{_day(until)}{'-' + channel if channel else ''}.{fmt_}"
    resp = web.StreamResponse(
        headers={
            "Content-Type": FORMATS[fmt_],
            # The name carries the channel: only letters a file name may hold.
            "Content-Disposition": "attachment; filename="
            + "".join(c if c.isalnum() or c in ".-_" else "_" for c in name),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await resp.prepare(request)
    chunk = csv_header() if fmt_ == "csv" else ""
    records = desk_of(request).conversations.turn_records(since, until, channel)
    # Closed at once if the client goes away: the store's cursor is not left to the collector.
    async with contextlib.aclosing(records):
        async for conv_id, chan, fact in records:
            chunk += line(record(conv_id, chan, fact), fmt_)
            if len(chunk) >= FLUSH_AT:
                await resp.write(chunk.encode())
                chunk = ""
    await resp.write(chunk.encode())
    await resp.write_eof()
    return resp


async def page(request: web.Request) -> web.StreamResponse:
    return await role_page(
        request, INSIGHTS, "insights.html", "Your role may not see the insights."
    )


async def vendored(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in VENDOR_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(VENDOR / name, headers=BROWSER_HEADERS)


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/insights", page)
    r.add_get("/console/static/vendor/{name}", vendored)
    r.add_get("/api/insights", insights)
    r.add_get("/api/insights/export", export)
