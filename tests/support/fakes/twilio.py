"""A fake Twilio REST API on loopback: the Messages resource the WhatsApp adapter posts to, and
media files behind the account's credentials. It records what it was sent and can be told to
fail the next requests the way Twilio does."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.support.fakes import Sent, serve

TWILIO_KEY: web.AppKey[FakeTwilio] = web.AppKey("fake_twilio")


@dataclass
class Failure:
    """One error answer, shaped like Twilio's JSON error body."""

    status: int
    code: int
    message: str
    after: int = 0
    """Requests to let through first."""
    retry_after: str | None = None
    """A `Retry-After` header to answer with (Twilio sends one with its 429s)."""


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    messages: list[dict[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: int = 0
    typing: list[dict[str, str]] = field(default_factory=list)
    """Accepted typing indicators (`messageId`, `channel`), in order."""
    events: list[tuple[str, str]] = field(default_factory=list)
    """("typing", message id) and ("message", body) in the order they came."""
    api_url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail_next(
        self,
        status: int,
        code: int,
        message: str = "error",
        *,
        after: int = 0,
        retry_after: str | None = None,
    ) -> None:
        self.failures.append(Failure(status, code, message, after, retry_after))

    def bodies(self, to: str | None = None) -> list[str]:
        return [m.get("Body", "") for m in self.messages if to is None or m["To"] == to]

    def sent(self) -> list[Sent]:
        """For the contract suite: each message as (number, text); options are numbered text."""
        return [
            Sent(chat_id=m["To"].removeprefix("whatsapp:"), text=m.get("Body", ""))
            for m in self.messages
        ]

    def authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"


def _error(status: int, code: int, message: str, retry_after: str | None = None) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return web.json_response(body, status=status, headers=headers)


async def create_message(request: web.Request) -> web.Response:
    fake = request.app[TWILIO_KEY]
    fake.requests += 1
    if not fake.authorised(request):
        return _error(401, 20003, "Authenticate")
    if request.match_info["sid"] != fake.account_sid:
        return _error(404, 20404, "The requested resource was not found")
    if fake.failures and fake.failures[0].after > 0:
        fake.failures[0].after -= 1
    elif fake.failures:
        f = fake.failures.pop(0)
        return _error(f.status, f.code, f.message, f.retry_after)
    form = await request.post()
    data: dict[str, str] = {}
    for key in form:
        values = form.getall(key)
        data[key] = ",".join(str(v) for v in values)
    if (
        "To" not in data
        or "From" not in data
        or not ("Body" in data or "ContentSid" in data or "MediaUrl" in data)
    ):
        return _error(400, 21619, "A text message body or media urls must be specified.")
    if len(data.get("Body", "")) > 1600:
        return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    sid = f"SM{next(fake._ids):032x}"
    fake.messages.append(data)
    fake.events.append(("message", data.get("Body", "")))
    resource: dict[str, Any] = {
        "sid": sid,
        "account_sid": fake.account_sid,
        "to": data["To"],
        "from": data["From"],
        "body": data.get("Body", ""),
        "status": "queued",
        "num_segments": "1",
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": "Sun, 22 Nov 2026 00:00:00 +0000",
        "uri": f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json",
    }
    return web.Response(status=201, text=json.dumps(resource), content_type="application/json")


async def get_media(request: web.Request) -> web.Response:
    fake = request.app[TWILIO_KEY]
    if not fake.authorised(request):
        return _error(401, 20003, "Authenticate")
    found = fake.media.get(request.match_info["name"])
    if found is None:
        return _error(404, 20404, "The requested resource was not found")
    return web.Response(body=found[0], content_type=found[1])


async def typing_indicator(request: web.Request) -> web.Response:
    """Messaging API v2 `Indicators/Typing` (public beta): a form naming the message answered
    (`messageId`, SM/MM and 32 hex digits, of a message this account received) and
    `channel=whatsapp`; answers `{"success": true}`."""
    fake = request.app[TWILIO_KEY]
    if not fake.authorised(request):
        return _error(401, 20003, "Authenticate")
    form = {k: str(v) for k, v in (await request.post()).items()}
    if form.get("channel") != "whatsapp":
        return _error(400, 21211, "channel must be whatsapp")
    if not re.fullmatch(r"(?:SM|MM)[0-9a-fA-F]{32}", form.get("messageId", "")):
        return _error(400, 21211, "messageId must be a Message SID")
    fake.typing.append(form)
    fake.events.append(("typing", form["messageId"]))
    return web.json_response({"success": True})


def create_app(fake: FakeTwilio) -> web.Application:
    app = web.Application()
    app[TWILIO_KEY] = fake
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create_message)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages/{msg}/Media/{name}", get_media)
    app.router.add_post("/v2/Indicators/Typing.json", typing_indicator)
    return app


@asynccontextmanager
async def running_fake_twilio(account_sid: str, auth_token: str) -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(account_sid=account_sid, auth_token=auth_token)
    async with serve(create_app(fake)) as url:
        fake.api_url = url
        yield fake


TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-test-auth-token"
TWILIO_FROM = "whatsapp:+14155238886"


@dataclass
class TwilioServer:
    fake: FakeTwilio
    url: str


@pytest.fixture
async def fake_twilio() -> AsyncIterator[TwilioServer]:
    async with running_fake_twilio(TWILIO_SID, TWILIO_TOKEN) as fake:
        yield TwilioServer(fake, fake.api_url)
