"""A fake Slack Web API on loopback: `chat.postMessage` as slack-sdk's AsyncWebClient calls it
(JSON body, bearer token). It records what it was sent and can be told to answer the next calls
with an error, e.g. 429 with Retry-After.

It also speaks Socket Mode as Slack documents it (https://docs.slack.dev/apis/events-api/using-socket-mode):
`apps.connections.open` with the app-level token answers a `ws://` URL; the socket greets with
`hello`, carries `events_api` / `interactive` envelopes that the app acknowledges with their
`envelope_id`, and says `disconnect` before Slack closes it. A test pushes envelopes, drops
connections, and reads the acknowledgements."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.support.fakes import Sent, serve

BOT_TOKEN = "xoxb-test-token"

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
    app_token: str = "xapp-1-A111-222-test"
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    """Open Socket Mode connections, oldest first."""
    opened: int = 0
    """Socket Mode connections ever opened."""
    acks: list[dict[str, Any]] = field(default_factory=list)
    """Every acknowledgement received, in order."""
    sent_envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    """Accepted assistant.threads.setStatus bodies, in order."""
    refuse_status: str = ""
    """An error every assistant.threads.setStatus is answered with (`missing_scope`...)."""
    status_calls: int = 0
    order: list[tuple[str, str]] = field(default_factory=list)
    """("status", text) and ("message", text) as they came."""
    opens: list[float] = field(default_factory=list)
    """When each `apps.connections.open` came (monotonic), refused ones included."""
    refuse_opens: int = 0
    """The next this many `apps.connections.open` fail as an outage does (503)."""
    _transports: dict[int, asyncio.BaseTransport] = field(default_factory=dict)

    def acked(self, envelope_id: str) -> bool:
        return any(a.get("envelope_id") == envelope_id for a in self.acks)

    async def push(self, payload: dict[str, Any], kind: str = "events_api", *, to: int = -1) -> str:
        """An envelope carrying `payload` on connection `to` (the newest by default); its id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "interactive",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        self.sent_envelopes[envelope_id] = envelope
        await self.sockets[to].send_str(json.dumps(envelope))
        return envelope_id

    async def push_raw(self, text: str, *, to: int = -1) -> None:
        await self.sockets[to].send_str(text)

    async def disconnect(self, reason: str = "refresh_requested", *, to: int = -1) -> None:
        """Slack's warning before it closes a connection; the app opens a new one first."""
        ws = self.sockets[to]
        await ws.send_str(
            json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}})
        )

    def drop(self, *, to: int = -1) -> None:
        """The connection lost without a word (network failure)."""
        ws = self.sockets.pop(to)
        transport = self._transports.pop(id(ws), None)
        if transport is not None:
            transport.abort()

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
    if request.match_info["method"] == "apps.connections.open":
        if request.headers.get("Authorization") != f"Bearer {fake.app_token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
    elif request.headers.get("Authorization") != f"Bearer {fake.token}":
        return web.json_response({"ok": False, "error": "invalid_auth"})
    method = request.match_info["method"]
    if method == "apps.connections.open":
        fake.opens.append(time.monotonic())
        if fake.refuse_opens > 0:
            fake.refuse_opens -= 1
            return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
        return _connections_open(request, fake)
    if method == "assistant.threads.setStatus":
        return await _set_status(request, fake)
    if method != "chat.postMessage":
        return web.json_response({"ok": False, "error": "unknown_method"})
    if fake.failures:
        status, body, headers = fake.failures.pop(0)
        return web.json_response(body, status=status, headers=headers)
    data = await _body(request)
    if not data.get("channel") or not (data.get("text") or data.get("blocks")):
        return web.json_response({"ok": False, "error": "no_text"})
    fake.calls.append(data)
    fake.order.append(("message", str(data.get("text", ""))))
    ts = f"1700000000.{next(fake._ts):06d}"
    return web.json_response({"ok": True, "channel": data["channel"], "ts": ts})


async def _body(request: web.Request) -> dict[str, Any]:
    """A Web API call's arguments, sent as JSON or as a form (Slack takes both)."""
    if request.content_type == "application/json":
        return dict(await request.json())
    return dict(await request.post())


async def _set_status(request: web.Request, fake: FakeSlack) -> web.Response:
    """`assistant.threads.setStatus` as documented: `channel_id`, `thread_ts` and `status`
    required (an empty status clears it)."""
    fake.status_calls += 1
    if fake.refuse_status:
        return web.json_response({"ok": False, "error": fake.refuse_status})
    data = await _body(request)
    if not data.get("channel_id"):
        return web.json_response({"ok": False, "error": "channel_not_found"})
    if not isinstance(data.get("thread_ts"), str) or "." not in data["thread_ts"]:
        return web.json_response({"ok": False, "error": "invalid_thread_ts"})
    if not isinstance(data.get("status"), str):
        return web.json_response({"ok": False, "error": "invalid_arguments"})
    fake.statuses.append(data)
    fake.order.append(("status", data["status"]))
    return web.json_response({"ok": True})


def _connections_open(request: web.Request, fake: FakeSlack) -> web.Response:
    host = request.host
    return web.json_response({"ok": True, "url": f"ws://{host}/link/?ticket={uuid.uuid4()}"})


async def socket_link(request: web.Request) -> web.WebSocketResponse:
    fake = request.app[SLACK_KEY]
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    fake.sockets.append(ws)
    if request.transport is not None:
        fake._transports[id(ws)] = request.transport
    fake.opened += 1
    await ws.send_str(
        json.dumps(
            {
                "type": "hello",
                "num_connections": len(fake.sockets),
                "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A123ABC456"},
            }
        )
    )
    try:
        async for msg in ws:
            if msg.type.name == "TEXT":
                with contextlib.suppress(ValueError):
                    fake.acks.append(json.loads(msg.data))
    finally:
        if ws in fake.sockets:
            fake.sockets.remove(ws)
        fake._transports.pop(id(ws), None)
    return ws


async def _close_sockets(app: web.Application) -> None:
    fake = app[SLACK_KEY]
    await asyncio.gather(*(ws.close() for ws in list(fake.sockets)), return_exceptions=True)


@asynccontextmanager
async def running_fake_slack(token: str) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(token=token)
    app = web.Application()
    app[SLACK_KEY] = fake
    app.router.add_post("/api/{method}", api_method)
    app.router.add_get("/link/", socket_link)
    app.on_shutdown.append(_close_sockets)
    async with serve(app) as base:
        fake.api_url = base + "/api/"
        yield fake


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(BOT_TOKEN) as fake:
        yield fake
