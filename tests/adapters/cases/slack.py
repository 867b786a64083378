"""The Slack case of the contract: signed Events API bodies, the fake Web API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlencode

from tests.adapters.contract import Golden, Request, json_goldens
from tests.support.fakes import FakePlatform
from tests.support.fakes.slack import BOT_TOKEN, FakeSlack, running_fake_slack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the example secret of Slack's docs
BOT_USER = "UBOT0001"
USER = "U2147483697"


def sign(body: bytes, secret: str = SIGNING_SECRET, at: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    base = b"v0:" + stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def event_body(event: dict[str, Any], event_id: str) -> bytes:
    return json.dumps(
        {
            "token": "XXYYZZ",
            "team_id": "T123ABC456",
            "api_app_id": "A123ABC456",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T123ABC456", "user_id": BOT_USER, "is_bot": True}],
        }
    ).encode()


def message_event(text: str, *, chat: str, event: str, **extra: Any) -> dict[str, Any]:
    ts = f"1700000000.{zlib.crc32(event.encode()) % 1_000_000:06d}"
    return {
        "type": "message",
        "channel": chat,
        "user": USER,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        **extra,
    }


def action_body(payload: dict[str, Any]) -> Request:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return Request(body, {"Content-Type": "application/x-www-form-urlencoded"})


def _encode(fixture: dict[str, Any]) -> Request:
    if "form_payload" in fixture:
        return action_body(fixture["form_payload"])
    return Request(json.dumps(fixture["body"]).encode(), {"Content-Type": "application/json"})


class SlackCase:
    name = "slack"
    chat = "D024BE91L"

    def fake(self) -> AbstractAsyncContextManager[FakeSlack]:
        return running_fake_slack(BOT_TOKEN)

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        assert isinstance(fake, FakeSlack)
        return {
            "slack_signing_secret": SIGNING_SECRET,
            "slack_bot_token": BOT_TOKEN,
            "slack_api_url": fake.api_url,
        }

    def message(self, text: str, *, chat: str, event: str) -> Request:
        body = event_body(message_event(text, chat=chat, event=event), f"Ev{event}")
        return Request(body, {"Content-Type": "application/json"})

    def malformed(self) -> Request:
        return Request(
            b'{"type": "event_callback", "event": ', {"Content-Type": "application/json"}
        )

    def sign(self, req: Request) -> Request:
        return req.with_headers(**sign(req.body))

    def forge(self, req: Request) -> Request:
        return req.with_headers(**sign(req.body, secret="not-the-signing-secret"))

    def stale(self, req: Request) -> Request | None:
        return req.with_headers(**sign(req.body, at=int(time.time()) - 301))

    def goldens(self) -> Sequence[Golden]:
        return json_goldens("slack", _encode)


CASE = SlackCase()
