"""The e-mail case of the contract: raw MIME posts signed the Mailgun way (X-Mailgun-* headers),
the recorded .eml samples and a Mailgun route form, replies captured by an in-process SMTP
server."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.adapters.contract import FIXTURES, Golden, Request
from tests.support.fakes import FakePlatform
from tests.support.fakes.smtp import SmtpSink, running_smtp_sink

SIGNING_KEY = "key-contract-mailgun-signing"
BOT = "Shop Bot <help@shop.example>"
MIME = {"Content-Type": "message/rfc822"}
SAMPLES = FIXTURES / "email"


def mailgun_headers(key: str, *, at: float | None = None) -> dict[str, str]:
    """A fresh timestamp/token pair and its signature, as headers for a raw MIME post."""
    ts = str(int(time.time() if at is None else at))
    token = secrets.token_hex(25)
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {"X-Mailgun-Timestamp": ts, "X-Mailgun-Token": token, "X-Mailgun-Signature": sig}


def user_mail(text: str, *, sender: str, event: str, subject: str = "Order question") -> bytes:
    msg = EmailMessage()
    msg["Return-Path"] = f"<{sender}>"
    msg["From"] = f"Ada <{sender}>"
    msg["To"] = BOT
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{hashlib.sha1(event.encode()).hexdigest()}@client.example>"
    msg.set_content(text)
    return msg.as_bytes()


class EmailCase:
    name = "email"
    chat = "ada@client.example"

    def fake(self) -> AbstractAsyncContextManager[SmtpSink]:
        return running_smtp_sink()

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        assert isinstance(fake, SmtpSink)
        return {
            "smtp_host": fake.host,
            "smtp_port": fake.port,
            "smtp_starttls": False,
            "email_from": BOT,
            "mailgun_signing_key": SIGNING_KEY,
            "email_max_attachment_bytes": 100_000,
        }

    def message(self, text: str, *, chat: str, event: str) -> Request:
        return Request(user_mail(text, sender=chat, event=event), dict(MIME))

    def malformed(self) -> Request:
        return Request(b"\x00\x01\x02 not a mail message", dict(MIME))

    def sign(self, req: Request) -> Request:
        return req.with_headers(**mailgun_headers(SIGNING_KEY))

    def forge(self, req: Request) -> Request:
        return req.with_headers(**mailgun_headers(SIGNING_KEY + "x"))

    def stale(self, req: Request) -> Request | None:
        return req.with_headers(**mailgun_headers(SIGNING_KEY, at=time.time() - 3600))

    def goldens(self) -> Sequence[Golden]:
        expect = json.loads((SAMPLES / "expect.json").read_text(encoding="utf-8"))
        out = [
            Golden(stem, Request(_eml(stem), dict(MIME)), wanted)
            for stem, wanted in sorted(expect.items())
        ]
        form = json.loads((SAMPLES / "mailgun_parsed_form.json").read_text(encoding="utf-8"))
        body = urlencode(form["fields"]).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        out.append(Golden("mailgun_parsed_form", Request(body, headers), form["expect"]))
        return out


def _eml(stem: str) -> bytes:
    return Path(SAMPLES / f"{stem}.eml").read_bytes()


CASE = EmailCase()
