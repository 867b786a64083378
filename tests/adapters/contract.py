"""The contract every channel adapter meets, and what a channel's test case must provide to be
checked against it (see README.md here). The tests themselves are in `test_contract.py`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from core.channel import WebhookReply, WebhookRequest
from core.errors import PayloadError
from core.ports import Channel, Dialogue, IntentParser
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.channels import FACTORIES
from gateway.services import Services
from tests.support._raw_http import post_raw
from tests.support.fakes import FakePlatform, Sent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PUBLIC_BASE_URL = "https://gateway.test"
"""Every harness gateway runs with this PUBLIC_BASE_URL, so a channel that signs the URL
(Twilio) signs `f"{PUBLIC_BASE_URL}/webhooks/{name}{query}"`."""


@dataclass(frozen=True)
class Request:
    """A webhook call as the platform would make it: body, headers, query string."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""

    def with_headers(self, **extra: str) -> Request:
        return replace(self, headers={**self.headers, **extra})

    def url(self, channel: str) -> str:
        return f"{PUBLIC_BASE_URL}/webhooks/{channel}{self.query}"


@dataclass(frozen=True)
class Golden:
    """A recorded platform payload (source noted in the fixture) and what parsing it must give.
    `expect` keys are those of `summarise`, or `refused` alone (see `expectation_problems`)."""

    name: str
    request: Request
    expect: dict[str, Any]


class ChannelCase(Protocol):
    """What the contract needs to know about one channel; one module per channel in `cases/`
    defining `CASE`."""

    name: str
    """The channel's name in `gateway.channels.FACTORIES` and its webhook path."""

    def fake(self) -> AbstractAsyncContextManager[FakePlatform]:
        """Start the fake platform API (and stop it on exit)."""
        ...

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        """Settings overrides turning the channel on with test credentials, pointed at `fake`."""
        ...

    def message(self, text: str, *, chat: str, event: str) -> Request:
        """An unsigned webhook carrying one user text message in chat `chat`, whose platform
        event id is derived from `event` (the same `event` gives the same id: a redelivery)."""
        ...

    def malformed(self) -> Request:
        """An unsigned body the platform would never send (broken JSON, missing fields)."""
        ...

    def sign(self, req: Request) -> Request:
        """`req` signed validly, now."""
        ...

    def forge(self, req: Request) -> Request:
        """`req` with a wrong signature or secret."""
        ...

    def stale(self, req: Request) -> Request | None:
        """`req` signed correctly but too long ago; None when the channel signs no timestamp."""
        ...

    def goldens(self) -> Sequence[Golden]:
        """The recorded payloads in `tests/fixtures/<name>/`, unsigned, with expectations."""
        ...


def build_settings(case: ChannelCase, fake: FakePlatform, data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=data_dir, public_base_url=PUBLIC_BASE_URL, **{**case.settings(fake), **extra}
    )


def build_channel(case: ChannelCase, fake: FakePlatform, data_dir: Path) -> Channel:
    """The channel exactly as the gateway builds it, from its registration line."""
    channel = FACTORIES[case.name](build_settings(case, fake, data_dir))
    assert channel is not None, f"{case.name}: case.settings() does not turn the channel on"
    return channel


def webhook_request(case: ChannelCase, req: Request) -> WebhookRequest:
    """`req` as `gateway/webhooks.py` hands it to an adapter."""
    from urllib.parse import parse_qsl

    return WebhookRequest(
        method="POST",
        url=req.url(case.name),
        headers={k.lower(): v for k, v in req.headers.items()},
        query=dict(parse_qsl(req.query.lstrip("?"))),
        body=req.body,
        remote="127.0.0.1",
    )


def summarise(reply: WebhookReply) -> dict[str, Any]:
    """Everything a golden may expect, from the reply and its first event."""
    out: dict[str, Any] = {
        "status": reply.status,
        "body": reply.body.decode("utf-8", "replace"),
        "note": reply.note,
        "events": len(reply.events),
    }
    if reply.events:
        e = reply.events[0]
        out.update(
            event_id=e.event_id,
            chat_id=e.conversation.chat_id,
            thread_id=e.conversation.thread_id,
            sender_id=e.sender.id,
            sender_name=e.sender.name,
            text=e.text,
            payload=e.payload,
            locale=e.locale,
            attachments=[
                {k: v for k, v in a.model_dump(exclude={"content"}).items() if v is not None}
                for a in e.attachments
            ],
            meta=dict(e.meta),
            kind=e.kind,
            target_id=e.target_id,
        )
    return out


REPLY_KEYS = frozenset({"status", "body", "note", "events"})
EVENT_KEYS = frozenset(
    {
        "event_id",
        "chat_id",
        "thread_id",
        "sender_id",
        "sender_name",
        "text",
        "payload",
        "locale",
        "attachments",
        "meta",
        "kind",
        "target_id",
    }
)
"""What `summarise` gives: of the reply, and of its first event."""
ABSENT = "<absent>"


def expectation_problems(expect: Any) -> list[str]:
    """Why `expect` could not fail, or contradicts itself ([] when it is a real expectation).
    Only the keys a golden names are compared, so an empty `expect` would pass whatever parse
    gave; each golden therefore states its event count (`"events": 0` for a payload that is
    acknowledged and ignored) and, when there is an event, something of it. A payload parse
    must refuse says so with `refused` (part of the PayloadError's message) and nothing else."""
    if not isinstance(expect, dict) or not expect:
        return ["no expectation (`expect` missing or empty): it would pass whatever parse gave"]
    if "refused" in expect:
        refused = expect["refused"]
        if not isinstance(refused, str) or not refused.strip() or len(expect) > 1:
            return ["`refused` takes part of the refusal's message and no other key"]
        return []
    problems = []
    unknown = sorted(set(expect) - REPLY_KEYS - EVENT_KEYS)
    if unknown:
        problems.append(f"unknown keys {unknown} (known: see `summarise`)")
    events = expect.get("events")
    named = sorted(set(expect) & EVENT_KEYS)
    if not isinstance(events, int) or isinstance(events, bool) or events < 0:
        problems.append("`events` (how many events parse gives, 0 for none) is required")
    elif events == 0 and named:
        problems.append(f"`events` is 0 but event fields {named} are expected")
    elif events > 0 and not named:
        problems.append("an event is expected but none of its fields: say what it must hold")
    if "meta" in expect and (not isinstance(expect["meta"], dict) or not expect["meta"]):
        problems.append("`meta` must name the entries expected (an empty one checks nothing)")
    return problems


def check_golden(golden: Golden, parse: Callable[[], WebhookReply]) -> None:
    """`parse()` (the channel parsing the golden's request) gives what the golden expects."""
    problems = expectation_problems(golden.expect)
    assert not problems, f"{golden.name}: {'; '.join(problems)}"
    if "refused" in golden.expect:
        with pytest.raises(PayloadError) as refusal:
            parse()
        assert golden.expect["refused"] in str(refusal.value), f"{golden.name}: {refusal.value}"
        return
    got = summarise(parse())
    wanted = {k: got.get(k, ABSENT) for k in golden.expect}
    if "meta" in golden.expect and isinstance(got.get("meta"), dict):
        wanted["meta"] = {k: got["meta"].get(k, ABSENT) for k in golden.expect["meta"]}
    assert wanted == golden.expect, f"{golden.name}: parsed {wanted}, expected {golden.expect}"


def json_goldens(channel: str, encode: Any, *, skip: Sequence[str] = ()) -> list[Golden]:
    """Goldens from `tests/fixtures/<channel>/*.json` files shaped
    `{"source": url, "body": ..., "expect": {...}}`; `encode(fixture_dict) -> Request`."""
    out = []
    for path in sorted((FIXTURES / channel).glob("*.json")):
        if path.stem in skip:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data.get("source"), f"{path}: every fixture names its source"
        # A missing `expect` is left for `check_golden` to refuse, as that golden's failure.
        out.append(Golden(path.stem, encode(data), data.get("expect") or {}))
    return out


@dataclass
class Gateway:
    client: TestClient[Any, Any]
    services: Services

    async def post(self, case: ChannelCase, req: Request) -> tuple[int, bytes]:
        resp = await self.client.post(
            f"/webhooks/{case.name}{req.query}", data=req.body, headers=req.headers
        )
        return resp.status, await resp.read()

    async def post_raw(self, case: ChannelCase, req: Request) -> int:
        """`req` written on a socket as bytes, header values included (see `post_raw`)."""
        server = self.client.server
        assert server.host is not None and server.port is not None
        path = f"/webhooks/{case.name}{req.query}"
        return await post_raw(server.host, server.port, path, req.headers, req.body)

    def queued(self, channel: str) -> int:
        """Events of `channel` accepted into the queue so far (duplicates not counted)."""
        return self._count("gateway_messages_in_total", channel)

    def duplicates(self, channel: str) -> int:
        return self._count("gateway_duplicates_total", channel)

    def _count(self, metric: str, channel: str) -> int:
        value = self.services.metrics.registry.get_sample_value(metric, {"channel": channel})
        return int(value or 0)


@asynccontextmanager
async def running_gateway(
    settings: Settings, *, nlu: IntentParser, dialogue: Dialogue
) -> AsyncIterator[Gateway]:
    """The real app (webhooks, queue, engine, outbox) on a loopback test server."""
    services = build_gateway(settings, "serve", nlu=nlu, dialogue=dialogue, with_worker=True)
    client = TestClient(TestServer(create_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Gateway(client, services)
    finally:
        await client.close()


async def wait_sent(fake: FakePlatform, count: int, timeout: float = 10.0) -> list[Sent]:
    """What the fake received once it holds at least `count` messages (or fail after
    `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        sent = fake.sent()
        if len(sent) >= count:
            return sent
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} messages at the platform, got {sent}")
        await asyncio.sleep(0.02)


SENTINEL = "sentinel message"


async def sentinel(
    gw: Gateway,
    case: ChannelCase,
    fake: FakePlatform,
    *,
    event: str,
    deliver: Callable[[Request], Awaitable[None]] | None = None,
) -> list[Sent]:
    """The barrier a "nothing was sent" check waits on, instead of a clock: a valid message
    posted now in `case.chat`, and everything the platform holds once its reply has come. One
    conversation's events are handled in order (a backlog as one turn, its texts joined), so
    whatever had been queued in that chat before it was answered first or is part of this reply:
    nothing is still on its way."""
    req = case.message(SENTINEL, chat=case.chat, event=event)
    if deliver is not None:  # another way in than the webhook (see ways.py)
        await deliver(req)
    else:
        status, _ = await gw.post(case, case.sign(req))
        assert 200 <= status < 300, f"the sentinel was refused: {status}"
    deadline = time.monotonic() + 10.0
    while not any(SENTINEL in s.text for s in fake.sent()):
        if time.monotonic() > deadline:
            raise AssertionError(f"the sentinel was never answered; the platform has {fake.sent()}")
        await asyncio.sleep(0.02)
    return fake.sent()
