"""Slack beyond the contract: the replay window with an injected clock, threads, Block Kit,
escaping, errors and Retry-After, long payloads, and the webhook answers through the app."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.slack import SlackChannel
from adapters.slack import events as slack_events
from core.backlog import resolve_choice
from core.channel import WebhookRequest
from core.errors import (
    ChannelSendError,
    ChannelUnreachable,
    PayloadError,
    RetryAfter,
    SendRefused,
    VerificationError,
)
from core.models import Attachment, Button, ConversationRef, Outbound
from tests.adapters.cases.slack import (
    BOT_TOKEN,
    CASE,
    SIGNING_SECRET,
    action_body,
    event_body,
    message_event,
    sign,
)
from tests.adapters.contract import (
    SENTINEL,
    Request,
    build_settings,
    running_gateway,
    sentinel,
    wait_sent,
    webhook_request,
)
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.fakes.slack import FakeSlack

NOW = 1_700_000_000
CONV = ConversationRef(channel="slack", chat_id="C123ABC456")


def channel_at(now: float, api_url: str = "http://127.0.0.1:9/api/") -> SlackChannel:
    return SlackChannel(
        signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, api_url=api_url, clock=lambda: now
    )


def signed_message(at: int, text: str = "hi") -> Any:
    req = CASE.message(text, chat="D1", event="e1")
    return webhook_request(CASE, req.with_headers(**sign(req.body, at=at)))


@pytest.mark.parametrize(
    ("offset", "ok"), [(0, True), (299, True), (-299, True), (301, False), (-301, False)]
)
def test_the_replay_window_is_five_minutes_either_way(offset: int, ok: bool):
    channel = channel_at(NOW + offset)
    req = signed_message(NOW)
    if ok:
        channel.verify(req)
    else:
        with pytest.raises(VerificationError, match="timestamp"):
            channel.verify(req)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-slack-request-timestamp": str(NOW)},
        {"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=00"},
        {"x-slack-request-timestamp": str(NOW), "x-slack-signature": "v0=" + "0" * 64},
    ],
    ids=["none", "no signature", "timestamp not a number", "wrong digest"],
)
def test_incomplete_or_wrong_headers_are_refused(headers: dict[str, str]):
    req = signed_message(NOW)
    bare = type(req)(req.method, req.url, headers, req.query, req.body, req.remote)
    with pytest.raises(VerificationError):
        channel_at(NOW).verify(bare)


def test_a_changed_body_is_refused():
    req = signed_message(NOW)
    tampered = type(req)(req.method, req.url, req.headers, req.query, req.body + b" ", req.remote)
    with pytest.raises(VerificationError, match="does not match"):
        channel_at(NOW).verify(tampered)


class _FixedClock:
    def now(self) -> float:
        return NOW


@pytest.mark.parametrize(
    "secret",
    [SIGNING_SECRET, "k", "é" * 40, "k" * 64, "k" * 65, "s" * 200],
    ids=["usual", "one byte", "non-ascii", "one block", "past a block", "long"],
)
@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"text": "caf\xc3\xa9 \xe2\x9c\x93"}', b"x" * 70_000, b"v0:1:2"],
    ids=["empty", "object", "non-ascii", "large", "colons"],
)
def test_the_signer_signs_as_slack_sdk_does(secret: str, body: bytes) -> None:
    """The pre-keyed signature is slack_sdk's own, for every body and for secrets shorter than,
    as long as and longer than SHA-256's block (which HMAC hashes first)."""
    from slack_sdk.signature import SignatureVerifier

    from adapters.slack import SlackSigner

    library = SignatureVerifier(secret, clock=_FixedClock())  # type: ignore[arg-type]
    for stamp in (str(NOW), str(NOW - 299)):
        expected = library.generate_signature(timestamp=stamp, body=body)
        assert SlackSigner(secret).sign(stamp, body) == expected


def test_an_empty_signing_secret_is_refused_as_slack_sdk_refuses_it() -> None:
    from adapters.slack import SlackSigner

    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        SlackSigner(" ")


def _verdicts(stamp: str, signature: str, body: bytes) -> tuple[bool, bool]:
    """(ours, slack_sdk's): whether each accepts the request. The library raises where the
    input is not even well formed (a timestamp that is no number, a body that is not UTF-8, a
    signature that is not ASCII): a refusal."""
    from slack_sdk.signature import SignatureVerifier

    library = SignatureVerifier(SIGNING_SECRET, clock=_FixedClock())  # type: ignore[arg-type]
    try:
        theirs = library.is_valid(body, stamp, signature)
    except (ValueError, TypeError):
        theirs = False
    headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": signature}
    try:
        channel_at(NOW).verify(WebhookRequest("POST", "http://x/", headers, {}, body))
    except VerificationError:
        return False, theirs
    return True, theirs


def test_the_channel_accepts_and_refuses_what_slack_sdk_does() -> None:
    good = b'{"type": "event_callback", "text": "caf\xc3\xa9"}'
    valid = sign(good, at=NOW)["X-Slack-Signature"]
    cases = [
        (str(NOW), valid, good),
        (str(NOW), valid, good + b" "),
        (str(NOW), valid.upper(), good),
        (str(NOW), valid[:-1], good),
        (str(NOW), "v1=" + valid[3:], good),
        (str(NOW), valid + "é", good),
        (str(NOW + 1), valid, good),
        (str(NOW - 300), sign(good, at=NOW - 300)["X-Slack-Signature"], good),
        (str(NOW - 301), sign(good, at=NOW - 301)["X-Slack-Signature"], good),
        (str(NOW + 301), sign(good, at=NOW + 301)["X-Slack-Signature"], good),
        ("soon", valid, good),
        (str(NOW), sign(b"\xff{}", at=NOW)["X-Slack-Signature"], b"\xff{}"),
        (str(NOW), sign(b"", at=NOW)["X-Slack-Signature"], b""),
    ]
    verdicts = [_verdicts(*case) for case in cases]
    assert [ours for ours, _ in verdicts] == [theirs for _, theirs in verdicts]
    assert verdicts[0] == (True, True) and verdicts[7] == (True, True)


def test_a_signed_body_that_is_not_utf8_is_refused_not_a_crash():
    """slack_sdk's verifier decodes the body as UTF-8 and raises on anything else: that is a
    401 with a reason, not an exception out of the webhook (a 500 Slack would retry)."""
    from tests.adapters.contract import Request

    body = b'{"type": "' + bytes([0xFF, 0xFE]) + b'"}'
    signed = webhook_request(
        CASE, Request(body, {"Content-Type": "application/json", **sign(body, at=NOW)})
    )
    with pytest.raises(VerificationError, match="not UTF-8"):
        channel_at(NOW).verify(signed)


async def test_a_reply_goes_into_the_users_thread(
    slack_channel: SlackChannel, fake_slack: FakeSlack
):
    conv = CONV.model_copy(update={"thread_id": "1482960137.003543"})
    await slack_channel.send(Outbound(conversation=conv, text="in the thread"))
    assert fake_slack.sent()[0].thread_id == "1482960137.003543"
    await slack_channel.send(Outbound(conversation=CONV, text="top level"))
    assert "thread_ts" not in fake_slack.calls[1]


async def test_buttons_are_block_kit_and_text_is_escaped(
    slack_channel: SlackChannel, fake_slack: FakeSlack
):
    buttons = (Button(label="Yes", payload="/affirm"), Button(label="No", payload="/deny"))
    await slack_channel.send(
        Outbound(conversation=CONV, text="<b>Tom & Jerry</b>?", buttons=buttons)
    )
    call = fake_slack.calls[0]
    section, actions = call["blocks"]
    assert section["text"] == {"type": "mrkdwn", "text": "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;?"}
    assert [(e["type"], e["text"]["text"], e["value"]) for e in actions["elements"]] == [
        ("button", "Yes", "/affirm"),
        ("button", "No", "/deny"),
    ]
    assert len({e["action_id"] for e in actions["elements"]}) == 2
    assert call["text"], "a notification text goes with the blocks"


async def test_images_become_image_blocks_and_files_links(
    slack_channel: SlackChannel, fake_slack: FakeSlack
):
    files = (
        Attachment(kind="image", url="https://cdn.test/a.png", name="parcel"),
        Attachment(kind="file", url="https://cdn.test/invoice.pdf", name="invoice.pdf"),
    )
    await slack_channel.send(Outbound(conversation=CONV, text="here", attachments=files))
    blocks = fake_slack.calls[0]["blocks"]
    assert {"type": "image", "image_url": "https://cdn.test/a.png", "alt_text": "parcel"} in blocks
    assert "<https://cdn.test/invoice.pdf|invoice.pdf>" in blocks[0]["text"]["text"]


@pytest.mark.parametrize(
    ("status", "error", "headers", "kind", "after"),
    [
        (429, "ratelimited", {"Retry-After": "7"}, RetryAfter, 7.0),
        (500, "internal_error", {}, ChannelUnreachable, None),
        (200, "channel_not_found", {}, SendRefused, None),
        (200, "not_in_channel", {}, SendRefused, None),
    ],
)
async def test_send_errors_say_whether_and_when_to_retry(
    slack_channel: SlackChannel,
    fake_slack: FakeSlack,
    status: int,
    error: str,
    headers: dict[str, str],
    kind: type[ChannelSendError],
    after: float | None,
):
    fake_slack.fail_next(status, error, **headers)
    with pytest.raises(ChannelSendError) as caught:
        await slack_channel.send(Outbound(conversation=CONV, text="hello"))
    assert type(caught.value) is kind
    assert getattr(caught.value, "retry_after", None) == after


async def test_an_unreachable_api_is_retryable():
    channel = channel_at(time.time(), api_url="http://127.0.0.1:9/api/")
    await channel.start()
    try:
        with pytest.raises(ChannelSendError) as caught:
            await channel.send(Outbound(conversation=CONV, text="hello"))
    finally:
        await channel.close()
    assert isinstance(caught.value, ChannelUnreachable)


async def test_a_payload_over_the_value_limit_round_trips_and_survives_a_restart(
    slack_channel: SlackChannel, fake_slack: FakeSlack
):
    long = "/order_status{" + "x" * 2500 + "}"
    buttons = (Button(label="Track it", payload=long),)
    await slack_channel.send(Outbound(conversation=CONV, text="pick", buttons=buttons))
    label, value = fake_slack.sent()[0].buttons[0]
    assert len(value.encode()) <= 2000
    press = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "channel": {"id": CONV.chat_id},
        "actions": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "value": value,
                "action_ts": "1548426417.840180",
            }
        ],
    }
    req = webhook_request(CASE, CASE.sign(action_body(press)))
    assert slack_channel.parse(req).events[0].payload == long
    restarted = channel_at(time.time())
    inbound = restarted.parse(req).events[0]
    assert inbound.payload is None and inbound.text == "Track it"
    assert resolve_choice(buttons, inbound).payload == long


def test_interactions_other_than_button_presses_are_accepted_and_ignored():
    body = action_body({"type": "view_submission", "user": {"id": "U1"}})
    reply = channel_at(time.time()).parse(webhook_request(CASE, body))
    assert reply.events == () and reply.status == 200 and "view_submission" in (reply.note or "")


async def test_the_app_echoes_the_challenge_and_refuses_replays_with_a_log_line(
    fake_slack: FakeSlack, tmp_path: Path
):
    settings = build_settings(CASE, fake_slack, tmp_path)
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        body = json.dumps({"type": "url_verification", "challenge": "abc123"}).encode()
        req = CASE.sign(
            type(CASE.message("x", chat="D1", event="e"))(
                body, {"Content-Type": "application/json"}
            )
        )
        status, answer = await gw.post(CASE, req)
        assert (status, answer) == (200, b"abc123")
        with capture_logs() as logs:
            status, _ = await gw.post(CASE, CASE.stale(CASE.message("hi", chat="D1", event="old")))
        assert status == 401
        assert any(e["event"] == "webhook.rejected" and "timestamp" in e["reason"] for e in logs)
        assert gw.queued("slack") == 0


async def test_a_429_is_waited_out_and_the_reply_arrives_once(
    fake_slack: FakeSlack, tmp_path: Path
):
    settings = build_settings(CASE, fake_slack, tmp_path)
    fake_slack.fail_next(429, "ratelimited", **{"Retry-After": "1"})
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        started = time.monotonic()
        msg = CASE.message("hello", chat=CASE.chat, event="rl")
        status, _ = await gw.post(CASE, CASE.sign(msg))
        assert status == 200
        await wait_sent(fake_slack, 1)
        assert time.monotonic() - started >= 0.9, "Retry-After was honoured"
        # Once: a later message of the chat is answered next, and nothing else was sent.
        sent = await sentinel(gw, CASE, fake_slack, event="rl-2")
        assert [s.text for s in sent] == ["#1 hello", f"#2 {SENTINEL}"]
        replies = fake_slack.requests - fake_slack.status_calls
        assert replies == 3, "the 429, the retry, the sentinel's reply"


def parsed(body: bytes) -> Any:
    headers = {"content-type": "application/json"}
    req = WebhookRequest("POST", "https://x/webhooks/slack", headers, {}, body)
    return channel_at(time.time()).parse(req)


@pytest.mark.parametrize(
    ("field", "value"),
    [("subtype", []), ("user", {}), ("user", ["U1"]), ("thread_ts", 5), ("files", [1])],
)
def test_a_wrongly_typed_message_field_is_a_payload_error_naming_it(field: str, value: Any):
    event = message_event("hi", chat="D1", event="Ev1")
    event[field] = value
    with pytest.raises(PayloadError, match=rf"\$\.event\.{field}"):
        parsed(event_body(event, "Ev1"))


@pytest.mark.parametrize(
    "event",
    [
        {"type": "channel_rename", "channel": {"id": "C1", "name": "new", "created": 1}},
        {"type": "user_change", "user": {"id": "U1", "name": "a"}},
        {"type": "reaction_added", "user": "U1", "item": {"type": "message", "ts": 5}},
        {"type": ["message"]},
        {"type": {"kind": "message"}},
    ],
    ids=["channel object", "user object", "other fields", "type a list", "type an object"],
)
def test_events_of_other_kinds_are_accepted_and_ignored_whatever_their_shape(
    event: Any, monkeypatch: pytest.MonkeyPatch
):
    """Classified from the parsed body, once: not read again as if it held lone surrogates."""
    monkeypatch.setattr(slack_events, "strict_json", None)  # a call to it would fail
    reply = parsed(event_body(event, "Ev2"))
    assert not reply.events and reply.note == f"event {event['type']!r} is not handled"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"type": "event_callback", "event": "hi", "event_id": "E1"}', r"\$\.event"),
        (b'{"type": "url_verification", "challenge": 7}', r"\$\.challenge"),
        (b'{"token": "x"}', "no event type"),
        (b'{"type": 3}', "no event type"),
        (b"[]", "not a JSON object"),
        (b'{"type": "event_callback", "event": ', "not UTF-8 JSON"),
        (b'{"type": "event_callback", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "UTF-8 JSON"),
        (
            b'{"x": "\xff", "type": "event_callback", "event_id": "E1", "event": '
            b'{"type": "message", "channel": "D1", "user": "U1", "ts": "1.2", "text": "hi"}}',
            "not UTF-8",
        ),
        (
            b'{"type": "event_callback", "event_id": "E1", "authorizations": [{"is_bot": true}],'
            b' "event": {"type": "message", "channel": "D1", "ts": "1.2", "text": "hi"}}',
            "without channel, user or ts",
        ),
    ],
    ids=[
        "event not an object",
        "challenge not a string",
        "no type",
        "type not a string",
        "array",
        "cut short",
        "nested deeper than parsers go",
        "not UTF-8 where nothing is read",
        "a message without a user",
    ],
)
def test_bodies_slack_does_not_send_are_payload_errors_saying_why(body: bytes, reason: str):
    with pytest.raises(PayloadError, match=reason):
        parsed(body)


def test_a_lone_surrogate_in_a_message_becomes_a_replacement_character_not_a_refusal():
    """JSON may carry "\\ud800" (valid JSON, not valid Unicode), which msgspec refuses."""
    body = event_body(message_event("hi \ud800 there", chat="D1", event="Ev3"), "Ev3")
    assert b"\\ud800" in body
    (event,) = parsed(body).events
    assert event.text == "hi \ufffd there"


def test_the_raw_payload_kept_is_the_body_as_slack_sent_it():
    body = event_body(message_event("hi", chat="D1", event="Ev4"), "Ev4")
    (event,) = parsed(body).events
    assert event.raw == body.decode()


def headers_only(req: WebhookRequest) -> WebhookRequest:
    """`req` as the gateway hands it to `precheck`: the body not read yet."""
    return type(req)(req.method, req.url, req.headers, req.query, b"", req.remote)


@pytest.mark.parametrize("offset", [-301, -299, 0, 299, 301])
def test_the_timestamp_is_checked_before_the_body_with_verifys_verdict(offset: int) -> None:
    channel = channel_at(NOW + offset)
    req = signed_message(NOW)
    if abs(offset) <= 300:
        channel.precheck(headers_only(req))
        channel.verify(req)
    else:
        with pytest.raises(VerificationError, match="timestamp"):
            channel.precheck(headers_only(req))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-slack-request-timestamp": str(NOW)},
        {"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=00"},
        {"x-slack-request-timestamp": str(NOW), "x-slack-signature": "v0=é"},
    ],
    ids=["none", "no signature", "timestamp not a number", "signature not ascii"],
)
def test_headers_that_cannot_pass_are_refused_before_the_body(headers: dict[str, str]) -> None:
    req = WebhookRequest("POST", "https://gateway.test/webhooks/slack", headers, {}, b"")
    with pytest.raises(VerificationError):
        channel_at(NOW).precheck(req)


def changed_event(chat: str, ts: str, text: str, edited_at: str, **extra: Any) -> dict[str, Any]:
    """A `message_changed` of the user's message `ts`, shaped as the recorded one."""
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": chat,
        "ts": edited_at,
        "event_ts": edited_at,
        "message": {
            "type": "message",
            "user": "U2147483697",
            "text": text,
            "ts": ts,
            "edited": {"user": "U2147483697", "ts": edited_at},
            **extra,
        },
    }


def deleted_event(chat: str, ts: str, deleted_at: str) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": chat,
        "ts": deleted_at,
        "deleted_ts": ts,
        "previous_message": {"type": "message", "user": "U2147483697", "text": "x", "ts": ts},
    }


def test_an_edit_and_a_delete_have_keys_of_their_own_and_a_retry_keeps_its_key() -> None:
    original = message_event("where is my ordr", chat="D1", event="o1", thread_ts="1.5")
    (message,) = parsed(event_body(original, "Ev1")).events
    ts = original["ts"]
    edit = changed_event("D1", ts, "where is my order &amp; <@UBOT0001>", "1800000000.1")
    edit["message"]["thread_ts"] = "1.5"
    (first,) = parsed(event_body(edit, "Ev2")).events
    (retried,) = parsed(event_body(edit, "Ev2-retry")).events  # Slack's retry: a new event_id
    (again,) = parsed(event_body(changed_event("D1", ts, "b", "1800000000.2"), "Ev3")).events
    (gone,) = parsed(event_body(deleted_event("D1", ts, "1800000000.3"), "Ev4")).events
    assert (message.kind, message.message_id) == ("message", ts)
    assert (first.kind, first.target_id, first.text) == ("edit", ts, "where is my order &")
    assert first.conversation == message.conversation  # the same thread
    assert (gone.kind, gone.target_id, gone.text) == ("delete", ts, "")
    keys = [e.dedupe_key for e in (message, first, again, gone)]
    assert len(set(keys)) == 4 and retried.dedupe_key == first.dedupe_key


def test_a_change_the_bot_must_not_hear_of_is_ignored() -> None:
    own = changed_event("D1", "1.1", "Order shipped", "1.2")
    own["message"]["user"] = "UBOT0001"  # the bot's own message (authorizations)
    assert parsed(event_body(own, "Ev5")).note == slack_events.FROM_A_BOT
    unfurl = changed_event("D1", "1.1", "see https://x", "1.2")
    del unfurl["message"]["edited"]
    assert "not an edit" in (parsed(event_body(unfurl, "Ev6")).note or "")
    with pytest.raises(PayloadError, match="without the message"):
        parsed(event_body({**changed_event("D1", "1.1", "a", "1.2"), "message": None}, "Ev7"))


async def test_a_late_edit_and_a_delete_are_queued_once_and_not_answered(
    fake_slack: FakeSlack, tmp_path: Path
):
    settings = build_settings(CASE, fake_slack, tmp_path)
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        original = message_event("hello", chat=CASE.chat, event="late")
        status, _ = await gw.post(CASE, CASE.sign(_json(event_body(original, "EvL1"))))
        assert status == 200
        await wait_sent(fake_slack, 1)
        edit = _json(event_body(changed_event(CASE.chat, original["ts"], "hi", "1.9"), "EvL2"))
        delete = _json(event_body(deleted_event(CASE.chat, original["ts"], "2.0"), "EvL3"))
        for req in (edit, edit, delete):  # the edit delivered twice
            status, _ = await gw.post(CASE, CASE.sign(req))
            assert status == 200
        sent = await sentinel(gw, CASE, fake_slack, event="late-2")
        assert [s.text for s in sent] == ["#1 hello", f"#2 {SENTINEL}"]
        assert gw.queued("slack") == 4 and gw.duplicates("slack") == 1
        edits = gw.services.metrics.registry.get_sample_value
        assert edits(
            "gateway_edits_total", {"channel": "slack", "kind": "edit", "fate": "recorded"}
        )
        session = await gw.services.storage.store.load(f"slack:{CASE.chat}")
        assert session is not None
        assert [t.kind for t in session.history] == ["message", "edit", "delete", "message"]
        desk = gw.services.desk
        assert desk is not None  # the conversation store keeps them for the team
        conv = await desk.conversations.by_key(f"slack:{CASE.chat}")
        assert conv is not None
        said = [m.text for m in await desk.conversations.messages(conv.id) if m.direction == "in"]
        assert said == ["hello", "[edited] hi", "[deleted a message]", SENTINEL]


def _json(body: bytes) -> Any:
    return type(CASE.message("x", chat="D1", event="e"))(body, {"Content-Type": "application/json"})


# -- typing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("thread", [None, "1700000000.000001"], ids=["top level", "in a thread"])
async def test_the_thread_status_shows_while_the_bot_works(tmp_path: Path, thread: str | None):
    """`assistant.threads.setStatus` under the customer's message when the turn begins; the
    reply in that thread takes it away (Slack does), a reply at the top level clears it."""
    extra = {"thread_ts": thread} if thread else {}
    event = message_event("where is my order", chat=CASE.chat, event="status-1", **extra)
    body = event_body(event, "EvStatus1")
    async with CASE.fake() as fake:
        settings = build_settings(CASE, fake, tmp_path)
        async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
            req = CASE.sign(Request(body, {"Content-Type": "application/json"}))
            status, _ = await gw.post(CASE, req)
            assert status == 200
            await wait_sent(fake, 1)
            cleared = [] if thread else [("status", "")]
            expected = [("status", "is typing…"), ("message", "#1 where is my order"), *cleared]
            await wait_for_order(fake, len(expected))
    under = thread or event["ts"]
    first = {"channel_id": CASE.chat, "thread_ts": under, "status": "is typing…"}
    assert fake.statuses[0] == first
    assert fake.order == expected


async def wait_for_order(fake: FakeSlack, count: int) -> None:
    """Until the fake has had `count` calls (the clearing status follows the reply)."""
    for _ in range(500):
        if len(fake.order) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake has {fake.order}")


async def test_a_workspace_that_refuses_the_status_is_asked_once(tmp_path: Path):
    """A token without the scope: one warning, no more calls; replies go out as before."""
    async with CASE.fake() as fake:
        fake.refuse_status = "missing_scope"
        settings = build_settings(CASE, fake, tmp_path)
        with capture_logs() as logs:
            async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
                for i in range(2):
                    req = CASE.sign(CASE.message(f"m{i}", chat=f"D{i}", event=f"refuse-{i}"))
                    assert (await gw.post(CASE, req))[0] == 200
                    await wait_sent(fake, i + 1)
    assert fake.status_calls == 1 and not fake.statuses
    assert [e["event"] for e in logs].count("slack.typing_unavailable") == 1
