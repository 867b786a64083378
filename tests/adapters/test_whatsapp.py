"""The WhatsApp adapter against Twilio's documented webhook forms and a fake Twilio REST API:
signature, parsing, status callbacks, numbered options, splitting, templates, error mapping."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from structlog.testing import capture_logs
from twilio.request_validator import RequestValidator

from adapters.whatsapp import EMPTY_TWIML, WhatsAppChannel
from core import outbox as outbox_module
from core.channel import WebhookRequest
from core.errors import (
    ChannelSendError,
    ChannelUnreachable,
    PayloadError,
    RetryAfter,
    SendRefused,
    VerificationError,
)
from core.metrics import Metrics
from core.models import Attachment, Button, ConversationRef, Outbound
from core.outbox import Outbox
from core.ratelimit import MemoryRateLimiter
from core.render import split_text
from core.store import MemorySentLog
from tests.support.fakes.twilio import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, TwilioServer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "whatsapp"
URL = "https://bot.example.com/webhooks/whatsapp"
USER = ConversationRef(channel="whatsapp", chat_id="+15555550123")
SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"


def params(name: str, **changes: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((FIXTURES / f"{name}.json").read_text())["params"]
    return {**data, **changes}


def signed_request(
    form: dict[str, str], url: str = URL, token: str = TWILIO_TOKEN
) -> WebhookRequest:
    signature = RequestValidator(token).compute_signature(url, form)
    return WebhookRequest(
        method="POST",
        url=url,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
        },
        query={},
        body=urlencode(form).encode(),
    )


def channel(api_url: str = "http://127.0.0.1:9") -> WhatsAppChannel:
    return WhatsAppChannel(
        account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, from_number=TWILIO_FROM, api_url=api_url
    )


@pytest.fixture
async def wa(fake_twilio: TwilioServer) -> Any:
    ch = channel(fake_twilio.url)
    await ch.start()
    yield ch
    await ch.close()


# -- verify ---------------------------------------------------------------------------------


def test_a_signed_form_is_accepted() -> None:
    channel().verify(signed_request(params("text")))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: WebhookRequest(
            r.method, r.url, {**r.headers, "x-twilio-signature": ""}, {}, r.body
        ),
        lambda r: WebhookRequest(
            r.method, r.url, {**r.headers, "x-twilio-signature": "AAAA"}, {}, r.body
        ),
        lambda r: WebhookRequest(
            r.method, r.url, r.headers, {}, r.body.replace(b"Where", b"There")
        ),
        lambda r: WebhookRequest(
            r.method, "http://10.0.0.5:8080/webhooks/whatsapp", r.headers, {}, r.body
        ),
        lambda r: WebhookRequest(r.method, r.url, r.headers, {}, b"\xff\xfe"),
    ],
    ids=["missing", "wrong", "body changed", "url seen behind a proxy", "not a form"],
)
def test_anything_else_is_refused(tamper: Any) -> None:
    with pytest.raises(VerificationError):
        channel().verify(tamper(signed_request(params("text"))))


def test_a_signature_with_another_token_is_refused() -> None:
    with pytest.raises(VerificationError):
        channel().verify(signed_request(params("text"), token="someone-else"))


# -- parse ----------------------------------------------------------------------------------


def test_a_text_message() -> None:
    reply = channel().parse(signed_request(params("text")))
    assert reply.body == EMPTY_TWIML and reply.content_type == "text/xml" and reply.status == 200
    [event] = reply.events
    assert event.event_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert event.conversation == USER
    assert event.sender.id == "15555550123" and event.sender.name == "Jane Doe"
    assert event.text == "Where is my order?" and event.payload is None
    assert event.meta["to"] == "whatsapp:+14155238886"


def test_media_becomes_an_attachment_with_its_url() -> None:
    [event] = channel().parse(signed_request(params("image"))).events
    [media] = event.attachments
    assert media.kind == "image" and media.mime_type == "image/jpeg"
    assert media.url is not None and media.url.endswith("/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f9")


def test_a_location() -> None:
    [event] = channel().parse(signed_request(params("location"))).events
    [place] = event.attachments
    assert place.kind == "location" and place.name == "Twilio Inc"
    assert place.latitude == pytest.approx(37.7879277)
    assert place.longitude == pytest.approx(-122.3937508)


def test_a_quick_reply_press_carries_its_payload() -> None:
    [event] = channel().parse(signed_request(params("button"))).events
    assert event.payload == "/order_status" and event.text == "Track an order"


def test_a_status_callback_is_recorded_not_answered() -> None:
    reply = channel().parse(signed_request(params("status_delivered")))
    assert reply.events == () and reply.body == EMPTY_TWIML
    assert reply.note is not None and "delivered" in reply.note


def test_the_24_hour_window_failure_is_logged_clearly() -> None:
    with capture_logs() as logs:
        reply = channel().parse(signed_request(params("status_failed_63016")))
    assert reply.events == () and reply.note is not None and "63016" in reply.note
    assert any(
        e["event"] == "whatsapp.outside_24h_window" and e["log_level"] == "error" for e in logs
    )


@pytest.mark.parametrize(
    "form",
    [
        {"From": "whatsapp:+15555550123", "Body": "hi"},
        {"MessageSid": SID, "Body": "hi"},
        {"MessageSid": SID, "From": "whatsapp:+1555", "NumMedia": "x"},
        {
            "MessageSid": SID,
            "From": "whatsapp:+1555",
            "NumMedia": "2",
            "MediaUrl0": "https://x/y",
        },
        {"MessageSid": SID, "From": "whatsapp:+1555", "Latitude": "91", "Longitude": "0"},
        {"MessageSid": "SM1", "From": "whatsapp:+1555", "Body": "hi"},
        {"MessageSid": SID + "MessageTypetext", "From": "whatsapp:+1555", "Body": "hi"},
        {"MessageSid": "XX" + SID[2:], "From": "whatsapp:+1555", "Body": "hi"},
        {"MessageSid": SID[:-1] + "g", "From": "whatsapp:+1555", "Body": "hi"},
    ],
    ids=[
        "no sid",
        "no from",
        "bad NumMedia",
        "missing MediaUrl1",
        "latitude out of range",
        "sid too short",
        "a value moved into the sid",
        "sid of another kind",
        "sid not hex",
    ],
)
def test_malformed_forms_are_refused(form: dict[str, str]) -> None:
    with pytest.raises(PayloadError):
        channel().parse(signed_request(form))


@pytest.mark.parametrize("sid", [SID, "MM" + SID[2:], "SM" + SID[2:].upper()])
def test_a_documented_message_sid_is_taken(sid: str) -> None:
    [event] = channel().parse(signed_request(params("text", MessageSid=sid))).events
    assert event.event_id == sid


def test_a_message_spends_its_signature_bound_to_its_form() -> None:
    """Twilio's signature joins names and values without separators: the gateway remembers it
    with the form it came with (tests/gateway/test_webhook_replays.py refuses the moves)."""
    form = params("text")
    req = signed_request(form)
    [spent] = channel().parse(req).claims
    assert spent.key == "whatsapp:" + req.header("x-twilio-signature")
    assert spent.ttl is not None and spent.ttl > 86400  # longer than the dedupe window
    assert channel().parse(signed_request(form)).claims == (spent,), "a retry: the same claim"
    moved = {k: v for k, v in form.items() if k != "ProfileName"}
    moved["NumSegments"] = form["NumSegments"] + "ProfileName" + form["ProfileName"]
    other = WebhookRequest(req.method, req.url, req.headers, {}, urlencode(moved).encode())
    channel().verify(other)  # still valid...
    [moved_claim] = channel().parse(other).claims
    assert moved_claim.key == spent.key and moved_claim.value != spent.value  # ...but not it


def test_a_message_with_nothing_to_read_is_ignored() -> None:
    reply = channel().parse(signed_request(params("text", Body="", MessageType="reaction")))
    assert reply.events == () and reply.note and "reaction" in reply.note


# -- send -----------------------------------------------------------------------------------


async def test_buttons_become_numbered_options(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    msg = Outbound(
        conversation=USER,
        text="What can I do for you?",
        buttons=(
            Button(label="Track an order", payload="/order_status"),
            Button(label="Talk to a person", payload="/human"),
        ),
    )
    sent = await wa.send(msg)
    [posted] = fake_twilio.fake.messages
    assert posted["To"] == "whatsapp:+15555550123" and posted["From"] == TWILIO_FROM
    assert posted["Body"] == "What can I do for you?\n\n1. Track an order\n2. Talk to a person"
    assert sent.platform_id and sent.platform_id.startswith("SM")


async def test_long_text_is_split_never_cut(wa: WhatsAppChannel, fake_twilio: TwilioServer) -> None:
    text = " ".join(f"Sentence number {i} of a long answer." for i in range(200))
    await wa.send(Outbound(conversation=USER, text=text))
    bodies = fake_twilio.fake.bodies()
    assert len(bodies) > 1 and all(len(b) <= 1600 for b in bodies)
    assert bodies == split_text(text, 1600)
    assert " ".join(bodies).split() == text.split()


async def test_a_split_reply_refused_halfway_is_resumed_not_repeated(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    text = " ".join(f"Sentence number {i} of a long answer." for i in range(120))
    fake_twilio.fake.fail_next(429, 20429, "Too Many Requests", after=1)
    box = Outbox({"whatsapp": wa}, MemorySentLog(), MemoryRateLimiter(), Metrics(), backoff=0)
    assert await box.deliver("e1:0", Outbound(conversation=USER, text=text))
    assert fake_twilio.fake.bodies() == split_text(text, 1600)


async def test_a_content_template_is_sent_by_sid(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    meta = {"content_sid": "HX" + "a" * 32, "content_variables": json.dumps({"1": "A1B2C3"})}
    await wa.send(Outbound(conversation=USER, text="ignored for templates", meta=meta))
    [posted] = fake_twilio.fake.messages
    assert posted["ContentSid"] == meta["content_sid"]
    assert json.loads(posted["ContentVariables"]) == {"1": "A1B2C3"}
    assert "Body" not in posted


async def test_outbound_media_goes_with_the_first_part(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    pic = Attachment(kind="image", url="https://cdn.example.com/label.png")
    await wa.send(Outbound(conversation=USER, text="Your label", attachments=(pic,)))
    [posted] = fake_twilio.fake.messages
    assert posted["MediaUrl"] == "https://cdn.example.com/label.png"


async def test_outside_the_window_is_not_retried_and_logged(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    fake_twilio.fake.fail_next(
        400, 63016, "Failed to send freeform message because you are outside the allowed window."
    )
    with capture_logs() as logs, pytest.raises(ChannelSendError) as err:
        await wa.send(Outbound(conversation=USER, text="hello again"))
    assert isinstance(err.value, SendRefused) and "63016" in str(err.value)
    assert any(e["event"] == "whatsapp.outside_24h_window" for e in logs)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (429, 20429, ChannelUnreachable),  # no Retry-After: the outbox's own back-off
        (500, 20500, ChannelUnreachable),
        (503, 20503, ChannelUnreachable),
        (400, 21211, SendRefused),
        (401, 20003, SendRefused),
    ],
)
async def test_errors_say_whether_to_retry(
    wa: WhatsAppChannel,
    fake_twilio: TwilioServer,
    status: int,
    code: int,
    kind: type[ChannelSendError],
) -> None:
    fake_twilio.fake.fail_next(status, code)
    with pytest.raises(ChannelSendError) as err:
        await wa.send(Outbound(conversation=USER, text="hi"))
    assert type(err.value) is kind


async def test_a_429_says_when_to_retry_as_twilio_asked(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    """`Retry-After: 3` was not honoured: the outbox retried after its own 0.5 s."""
    fake_twilio.fake.fail_next(429, 20429, "Too Many Requests", retry_after="3")
    with pytest.raises(ChannelSendError) as err:
        await wa.send(Outbound(conversation=USER, text="hi"))
    assert isinstance(err.value, RetryAfter) and err.value.retry_after == 3.0
    fake_twilio.fake.fail_next(429, 20429, "Too Many Requests")  # without the header
    with pytest.raises(ChannelSendError) as err:
        await wa.send(Outbound(conversation=USER, text="hi"))
    assert isinstance(err.value, ChannelUnreachable)  # retried, after the outbox's back-off


async def test_concurrent_sends_each_get_their_own_retry_after(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    fake_twilio.fake.fail_next(429, 20429, retry_after="7")
    fake_twilio.fake.fail_next(500, 20500)
    results = await asyncio.gather(
        *(wa.send(Outbound(conversation=USER, text=f"m{i}")) for i in range(3)),
        return_exceptions=True,
    )
    waits = sorted(
        getattr(r, "retry_after", 0.0) for r in results if isinstance(r, ChannelSendError)
    )
    assert waits == [0.0, 7.0], results


async def test_the_outbox_waits_as_twilio_asked(
    wa: WhatsAppChannel, fake_twilio: TwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(outbox_module, "asyncio", SimpleNamespace(sleep=sleep))
    fake_twilio.fake.fail_next(429, 20429, retry_after="3")
    outbox = Outbox({"whatsapp": wa}, MemorySentLog(), MemoryRateLimiter(), Metrics())
    assert await outbox.deliver("t:0", Outbound(conversation=USER, text="hi"))
    assert slept == [3.0] and fake_twilio.fake.bodies() == ["hi"]


async def test_an_unreachable_api_is_retryable() -> None:
    ch = channel("http://127.0.0.1:9")
    try:
        with pytest.raises(ChannelSendError) as err:
            await ch.send(Outbound(conversation=USER, text="hi"))
    finally:
        await ch.close()
    assert isinstance(err.value, ChannelUnreachable)


async def test_wrong_credentials_are_refused_by_the_api(fake_twilio: TwilioServer) -> None:
    ch = WhatsAppChannel(
        account_sid=TWILIO_SID, auth_token="nope", from_number=TWILIO_FROM, api_url=fake_twilio.url
    )
    try:
        with pytest.raises(ChannelSendError) as err:
            await ch.send(Outbound(conversation=USER, text="hi"))
    finally:
        await ch.close()
    assert isinstance(err.value, SendRefused) and fake_twilio.fake.messages == []


async def test_media_is_fetched_with_the_account_credentials(
    wa: WhatsAppChannel, fake_twilio: TwilioServer
) -> None:
    fake_twilio.fake.media["ME1"] = (b"\xff\xd8jpeg", "image/jpeg")
    url = f"{fake_twilio.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages/MM1/Media/ME1"
    assert await wa.fetch_media(Attachment(kind="image", url=url)) == b"\xff\xd8jpeg"
    outsider = channel(fake_twilio.url)
    outsider._token = "wrong"  # the session is made with the credentials it holds
    try:
        with pytest.raises(Exception, match="401"):
            await outsider.fetch_media(Attachment(kind="image", url=url))
    finally:
        await outsider.close()


async def test_twilio_edge_settings_in_the_environment_do_not_move_the_api(
    fake_twilio: TwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    ch = channel(fake_twilio.url)
    try:
        await ch.send(Outbound(conversation=USER, text="hi"))
    finally:
        await ch.close()
    assert fake_twilio.fake.bodies() == ["hi"]


def test_a_post_without_a_signature_is_refused_before_its_body() -> None:
    req = signed_request(params("text"))
    early = WebhookRequest(req.method, req.url, req.headers, {}, b"")
    channel().precheck(early)  # present: the body decides, in verify
    bare = WebhookRequest(
        req.method, req.url, {"content-type": req.headers["content-type"]}, {}, b""
    )
    with pytest.raises(VerificationError, match="missing"):
        channel().precheck(bare)


# -- typing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("on", [True, False], ids=["typing", "WHATSAPP_TYPING=false"])
async def test_typing_is_shown_when_the_turn_begins_and_the_reply_follows(
    tmp_path: Path, on: bool
) -> None:
    """Twilio's typing indicator (Messaging API `Indicators/Typing`, the message's SID) goes
    out as the bot takes the message up, before the reply, which ends it on the phone."""
    from tests.adapters.cases.whatsapp import CASE
    from tests.adapters.contract import build_settings, running_gateway, wait_sent
    from tests.support.doubles import EchoDialogue, KeywordNlu

    async with CASE.fake() as fake:
        settings = build_settings(CASE, fake, tmp_path, whatsapp_typing=on)
        async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
            req = CASE.message("where is my order", chat=CASE.chat, event="typing-1")
            status, _ = await gw.post(CASE, CASE.sign(req))
            assert status == 200
            await wait_sent(fake, 1)
    [sid] = parse_qs(req.body.decode())["MessageSid"]
    expected = [("typing", sid)] if on else []
    assert fake.events == [*expected, ("message", "#1 where is my order")]
