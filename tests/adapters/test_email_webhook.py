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
from adapters.email.mailgun import Verifier
from core.channel import Claim, WebhookRequest
from core.errors import PayloadError, VerificationError
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


def test_a_post_spends_its_token_bound_to_its_body() -> None:
    """The gateway refuses a token spent on another body, in the store every process shares
    (tests/gateway/test_webhook_replays.py); here, that parse declares it."""
    ch = channel()
    headers = {"Content-Type": "message/rfc822", **mailgun_headers(KEY, at=NOW)}
    first = ch.parse(request(RAW, headers))
    retry = ch.parse(request(RAW, headers))
    other = ch.parse(
        request(user_mail("send me all", sender="ada@client.example", event="w2"), headers)
    )
    token = headers["X-Mailgun-Token"]
    assert first.claims == (Claim(f"mailgun:{token}", hashlib.sha256(RAW).hexdigest(), 1800.0),)
    assert retry.claims == first.claims
    [spent] = other.claims
    assert spent.key == first.claims[0].key and spent.value != first.claims[0].value


def test_the_token_spent_is_the_one_verified() -> None:
    """A form may carry a `token` field of its own without a signature; the headers' triple is
    then what verify checked, so the headers' token is the one spent."""
    headers = mailgun_headers(KEY, at=NOW)
    fields = {"sender": "ada@client.example", "from": "ada@client.example", "body-plain": "hi"}
    fields["token"] = "chosen-by-the-sender"
    req = request(
        urlencode(fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    ch = channel()
    ch.verify(req)
    [spent] = ch.parse(req).claims
    assert spent.key == f"mailgun:{headers['X-Mailgun-Token']}"


@pytest.mark.parametrize(
    "sender", ["ada@client.example\r\nBcc: all@x.example", "a@b\nc", "a@b\x00"]
)
@pytest.mark.parametrize("with_mime", [True, False], ids=["body-mime", "parsed fields"])
def test_a_sender_with_a_line_break_is_400(sender: str, with_mime: bool) -> None:
    """It was a 500 (the Return-Path header refused the value), or a header of the sender's
    choosing in the body-mime form."""
    fields = {"sender": sender, "from": "ada@client.example", "body-plain": "hi"}
    if with_mime:
        fields["body-mime"] = RAW.decode()
    req = request(urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(PayloadError, match="sender"):
        channel().parse(req)


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
    reply = ch.parse(req)
    assert len(reply.events) == 1
    fields["body-plain"] = "changed"  # the form's own signature does not cover the body
    changed = request(
        urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    )
    ch.verify(changed)
    [spent], [again] = reply.claims, ch.parse(changed).claims
    assert again.key == spent.key and again.value != spent.value  # the token does: a replay


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


def headers_only(req: WebhookRequest) -> WebhookRequest:
    """`req` as the gateway hands it to `precheck`: the body not read yet."""
    return request(b"", dict(req.headers), dict(req.query))


@pytest.mark.parametrize(
    ("req", "ok"),
    [
        (raw_post(), True),
        (request(RAW, {"Content-Type": "message/rfc822"}, query=signed_fields()), True),
        (request(RAW, {"Content-Type": "message/rfc822"}), False),
        (raw_post(key="another-key"), False),
        (raw_post(at=NOW - 901), False),
    ],
    ids=["signed headers", "signed query", "unsigned", "wrong key", "too old"],
)
def test_a_raw_posts_signature_is_checked_before_the_body(req: WebhookRequest, ok: bool) -> None:
    if ok:
        channel().precheck(headers_only(req))
        channel().verify(req)
    else:
        with pytest.raises(VerificationError):
            channel().precheck(headers_only(req))


def test_a_forms_signature_is_in_its_body_so_waits_for_it() -> None:
    body = urlencode({**signed_fields(), "body-mime": RAW.decode()}).encode()
    req = request(body, {"Content-Type": "application/x-www-form-urlencoded"})
    channel().precheck(headers_only(req))
    channel().verify(req)
    with pytest.raises(VerificationError, match="MAILGUN_SIGNING_KEY"):
        channel(key=None).precheck(headers_only(req))
