"""POST /webhooks/email: the Mailgun signature in every form (raw MIME with X-Mailgun-* headers
or query parameters, Mailgun route forms), the timestamp window, one-use tokens, and the forms'
contents."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest

from adapters.email import EmailChannel, SmtpServer
from adapters.email.mailgun import UsedTokens, Verifier
from core.channel import PayloadError, VerificationError, WebhookRequest
from tests.adapters.cases.email import mailgun_headers, user_mail

KEY = "key-webhook-test"
NOW = 1_800_000_000.0
RAW = user_mail("where is my order", sender="ada@client.example", event="w1")


def channel(key: str | None = KEY, clock: float = NOW) -> EmailChannel:
    verifier = Verifier(key.encode(), clock=lambda: clock) if key else None
    return EmailChannel(
        sender="Shop Bot <help@shop.example>",
        smtp=SmtpServer("127.0.0.1"),
        signing_key=key,
        verifier=verifier,
    )


def request(
    body: bytes, headers: dict[str, str], query: dict[str, str] | None = None
) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://gateway.test/webhooks/email",
        headers={k.lower(): v for k, v in headers.items()},
        query=query or {},
        body=body,
    )


def raw_post(at: float = NOW, key: str = KEY, body: bytes = RAW) -> WebhookRequest:
    return request(body, {"Content-Type": "message/rfc822", **mailgun_headers(key, at=at)})


def signed_fields(key: str = KEY, at: float = NOW, token: str = "t" * 50) -> dict[str, str]:
    ts = str(int(at))
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": ts, "token": token, "signature": sig}


def multipart(
    fields: dict[str, str], files: list[tuple[str, str, str, bytes]] = ()
) -> tuple[bytes, str]:  # type: ignore[assignment]
    boundary = "----form-boundary-7MA4YWxkTrZu0gW"
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, filename, ctype, data in files:
        out += (
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def test_a_signed_raw_message_is_taken() -> None:
    ch = channel()
    req = raw_post()
    ch.verify(req)
    [event] = ch.parse(req).events
    assert event.text == "where is my order" and event.conversation.chat_id == "ada@client.example"


def test_the_signature_may_come_as_query_parameters() -> None:
    fields = signed_fields()
    channel().verify(request(RAW, {"Content-Type": "message/rfc822"}, query=fields))


@pytest.mark.parametrize(
    "req",
    [
        request(RAW, {"Content-Type": "message/rfc822"}),
        raw_post(key="another-key"),
        raw_post(at=NOW - 901),
        raw_post(at=NOW + 901),
        request(
            RAW,
            {
                "Content-Type": "message/rfc822",
                "X-Mailgun-Timestamp": "soon",
                "X-Mailgun-Token": "t",
                "X-Mailgun-Signature": "00",
            },
        ),
    ],
    ids=["unsigned", "wrong key", "too old", "from the future", "timestamp not a number"],
)
def test_anything_else_is_refused(req: WebhookRequest) -> None:
    with pytest.raises(VerificationError):
        channel().verify(req)


def test_without_a_signing_key_the_webhook_is_off() -> None:
    with pytest.raises(VerificationError, match="MAILGUN_SIGNING_KEY"):
        channel(key=None).verify(raw_post())


def test_a_token_signs_one_message_only() -> None:
    ch = channel()
    headers = {"Content-Type": "message/rfc822", **mailgun_headers(KEY, at=NOW)}
    ch.verify(request(RAW, headers))
    ch.verify(request(RAW, headers))  # the platform retrying the same delivery: fine, deduped later
    other = user_mail("send me everything", sender="ada@client.example", event="w2")
    with pytest.raises(VerificationError, match="token already used"):
        ch.verify(request(other, headers))


def test_used_tokens_are_forgotten_after_the_window() -> None:
    now = [0.0]
    tokens = UsedTokens(ttl=10, clock=lambda: now[0])
    assert tokens.bind("t1", "a") and not tokens.bind("t1", "b")
    now[0] = 11
    assert tokens.bind("t1", "b")


def test_a_mailgun_form_with_body_mime() -> None:
    fields = {
        "recipient": "help@shop.example",
        "sender": "bounce@client.example",
        "body-mime": RAW.decode(),
        **signed_fields(),
    }
    body, ctype = multipart(fields)
    ch = channel()
    req = request(body, {"Content-Type": ctype})
    ch.verify(req)
    [event] = ch.parse(req).events
    assert event.text == "where is my order"
    assert event.meta["reply_to"] == "ada@client.example"  # the message's own Return-Path stands


def test_a_mailgun_parsed_form_with_an_attachment() -> None:
    fields = {
        "sender": "ada@client.example",
        "from": "Ada <ada@client.example>",
        "subject": "Photo",
        "body-plain": "Here it is\n\n-- \nAda",
        "message-headers": json.dumps(
            [
                ["Message-Id", "<p1@client.example>"],
                ["Subject", "Photo"],
                ["Subject", "dup"],
                ["Content-Type", "multipart/mixed"],
            ]
        ),
        "attachment-count": "1",
        **signed_fields(),
    }
    body, ctype = multipart(fields, [("attachment-1", "label.png", "image/png", b"\x89PNG\r\n")])
    ch = channel()
    req = request(body, {"Content-Type": ctype})
    ch.verify(req)
    [event] = ch.parse(req).events
    assert event.event_id == "p1@client.example" and event.text == "Here it is"
    [png] = event.attachments
    assert (png.name, png.kind, png.content) == ("label.png", "image", b"\x89PNG\r\n")


def test_a_urlencoded_form_is_signed_by_its_fields() -> None:
    fields = {
        "sender": "ada@client.example",
        "from": "ada@client.example",
        "body-plain": "hi",
        **signed_fields(),
    }
    ch = channel()
    req = request(urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    ch.verify(req)
    assert len(ch.parse(req).events) == 1
    fields["body-plain"] = (
        "changed"  # the form's own signature does not cover the body, the token does
    )
    with pytest.raises(VerificationError):
        ch.verify(
            request(
                urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
            )
        )


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (
            urlencode({"recipient": "help@shop.example"}).encode(),
            "application/x-www-form-urlencoded",
        ),
        (b"{}", "application/json"),
        (b"\x00\x01garbage", "message/rfc822"),
        (
            urlencode({"from": "a@b.example", "message-headers": "not json"}).encode(),
            "application/x-www-form-urlencoded",
        ),
    ],
    ids=["form without the message", "json", "not mime", "headers not json"],
)
def test_bad_bodies_are_400(body: bytes, ctype: str) -> None:
    with pytest.raises(PayloadError):
        channel().parse(request(body, {"Content-Type": ctype}))


def test_a_parsed_form_header_the_library_cannot_store_is_left_out() -> None:
    headers = [["Message-ID", "<@>"], ["Subject", "order"], ["Subject", "second"]]
    fields = {
        "sender": "ada@client.example",
        "from": "ada@client.example",
        "body-plain": "where is my order",
        "message-headers": json.dumps(headers),
    }
    req = request(urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    [event] = channel().parse(req).events
    assert event.text == "where is my order" and event.meta["subject"] == "order"
