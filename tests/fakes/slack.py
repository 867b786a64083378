"""A fake Slack Web API on loopback: `chat.postMessage` as slack-sdk's AsyncWebClient calls it
(JSON body, bearer token). It records what it was sent and can be told to answer the next calls
with an error, e.g. 429 with Retry-After."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.adapters.contract import Sent, serve

SLACK_KEY: web.AppKey[FakeSlack] = web.AppKey("fake_slack")


@dataclass
class FakeSlack:
    token: str
    api_url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Accepted chat.postMessage bodies, in order."""
    failures: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    requests: int = 0
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, status: int, error: str, **headers: str) -> None:
        self.failures.append((status, {"ok": False, "error": error}, headers))

    def sent(self) -> list[Sent]:
        return [_normalise(c) for c in self.calls]


def _normalise(call: dict[str, Any]) -> Sent:
    blocks = call.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    texts = [b["text"]["text"] for b in blocks if b.get("type") == "section"]
    buttons = tuple(
        (e["text"]["text"], e["value"])
        for b in blocks
        if b.get("type") == "actions"
        for e in b["elements"]
    )
    return Sent(
        chat_id=call["channel"],
        text="\n".join(texts) if blocks else call.get("text", ""),
        buttons=buttons,
        thread_id=call.get("thread_ts"),
    )


async def api_method(request: web.Request) -> web.Response:
    fake = request.app[SLACK_KEY]
    fake.requests += 1
    if request.headers.get("Authorization") != f"Bearer {fake.token}":
        return web.json_response({"ok": False, "error": "invalid_auth"})
    method = request.match_info["method"]
    if method != "chat.postMessage":
        return web.json_response({"ok": False, "error": "unknown_method"})
    if fake.failures:
        status, body, headers = fake.failures.pop(0)
        return web.json_response(body, status=status, headers=headers)
    if request.content_type == "application/json":
        data = await request.json()
    else:
        data = dict(await request.post())
    if not data.get("channel") or not (data.get("text") or data.get("blocks")):
        return web.json_response({"ok": False, "error": "no_text"})
    fake.calls.append(data)
    ts = f"1700000000.{next(fake._ts):06d}"
    return web.json_response({"ok": True, "channel": data["channel"], "ts": ts})


@asynccontextmanager
async def running_fake_slack(token: str) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(token=token)
    app = web.Application()
    app[SLACK_KEY] = fake
    app.router.add_post("/api/{method}", api_method)
    async with serve(app) as base:
        fake.api_url = base + "/api/"
        yield fake
