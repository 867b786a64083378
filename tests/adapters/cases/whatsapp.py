"""The WhatsApp (Twilio) case of the contract: form posts signed with X-Twilio-Signature over the
public URL, the fake Twilio REST API."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from tests.adapters.contract import Golden, Request, json_goldens
from tests.support.fakes import FakePlatform
from tests.support.fakes.twilio import FakeTwilio, running_fake_twilio

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "twilio-contract-auth-token"
FROM = "whatsapp:+14155238886"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NAME = "whatsapp"


def _form(params: dict[str, str]) -> Request:
    return Request(urlencode(params).encode(), dict(FORM))


def _signed(req: Request, token: str) -> Request:
    params = dict(parse_qsl(req.body.decode(), keep_blank_values=True))
    signature = RequestValidator(token).compute_signature(req.url(NAME), params)
    return req.with_headers(**{"X-Twilio-Signature": signature})


class WhatsAppCase:
    name = NAME
    chat = "+15555550123"

    def fake(self) -> AbstractAsyncContextManager[FakeTwilio]:
        return running_fake_twilio(ACCOUNT_SID, AUTH_TOKEN)

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        assert isinstance(fake, FakeTwilio)
        return {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_whatsapp_from": FROM,
            "twilio_api_url": fake.api_url,
            "twilio_messaging_url": fake.api_url,
        }

    def message(self, text: str, *, chat: str, event: str) -> Request:
        sid = "SM" + hashlib.md5(event.encode()).hexdigest()
        return _form(
            {
                "SmsMessageSid": sid,
                "NumMedia": "0",
                "ProfileName": "Ada",
                "MessageType": "text",
                "SmsSid": sid,
                "WaId": chat.lstrip("+"),
                "SmsStatus": "received",
                "Body": text,
                "To": FROM,
                "NumSegments": "1",
                "MessageSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": f"whatsapp:{chat}",
                "ApiVersion": "2010-04-01",
            }
        )

    def malformed(self) -> Request:
        return _form({"AccountSid": ACCOUNT_SID, "Body": "no sender, no MessageSid"})

    def sign(self, req: Request) -> Request:
        return _signed(req, AUTH_TOKEN)

    def forge(self, req: Request) -> Request:
        return _signed(req, AUTH_TOKEN + "x")

    def stale(self, req: Request) -> Request | None:
        return None  # Twilio signs no timestamp; a replayed MessageSid is caught by the dedupe

    def goldens(self) -> Sequence[Golden]:
        return json_goldens(NAME, lambda fixture: _form(fixture["params"]))


CASE = WhatsAppCase()
