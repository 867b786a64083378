"""Telegram beyond the contract: flood control and refusals, the 64-byte callback limit, the
spinner answered before the turn, group rules with the @name from getMe, edits, media, topics,
and the one-message-a-second spacing per chat."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram import TelegramChannel
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
from core.models import Attachment, Button, ConversationRef, Inbound, Outbound, Sender
from tests.adapters.cases.telegram import BOT_TOKEN, CASE, SECRET_TOKEN, text_update
from tests.adapters.contract import (
    FIXTURES,
    SENTINEL,
    Request,
    build_settings,
    running_gateway,
    sentinel,
    wait_sent,
    webhook_request,
)
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.fakes.telegram import FakeTelegram

CONV = ConversationRef(channel="telegram", chat_id="1111111")


def fixture_body(name: str) -> dict:
    return json.loads((FIXTURES / "telegram" / f"{name}.json").read_text())["body"]


def parse(channel: TelegramChannel, body: dict):
    req = webhook_request(CASE, CASE.sign(Request(json.dumps(body).encode())))
    channel.verify(req)
    return channel.parse(req)


def make(api_url: str, **kw) -> TelegramChannel:
    return TelegramChannel(bot_token=BOT_TOKEN, secret_token=SECRET_TOKEN, api_url=api_url, **kw)


@pytest.mark.parametrize(
    ("code", "description", "after", "kind", "wait"),
    [
        (429, "Too Many Requests: retry after 3", 3, RetryAfter, 3.0),
        (403, "Forbidden: bot was blocked by the user", None, SendRefused, None),
        (400, "Bad Request: chat not found", None, SendRefused, None),
        (502, "Bad Gateway", None, ChannelUnreachable, None),
    ],
)
async def test_send_errors_say_whether_and_when_to_retry(
    telegram_channel: TelegramChannel,
    fake_telegram: FakeTelegram,
    code: int,
    description: str,
    after: int | None,
    kind: type[ChannelSendError],
    wait: float | None,
):
    fake_telegram.fail_next(code, description, retry_after=after)
    with pytest.raises(ChannelSendError) as caught:
        await telegram_channel.send(Outbound(conversation=CONV, text="hello"))
    assert type(caught.value) is kind
    assert getattr(caught.value, "retry_after", None) == wait


async def test_long_payloads_get_short_keys_that_map_back_and_survive_a_restart(
    telegram_channel: TelegramChannel, fake_telegram: FakeTelegram
):
    long = '/order_status{"order_id": "A1B2C3", "note": "' + "x" * 80 + '"}'
    buttons = (Button(label="Track A1B2C3", payload=long), Button(label="No", payload="/deny"))
    await telegram_channel.send(Outbound(conversation=CONV, text="Track it?", buttons=buttons))
    keyboard = fake_telegram.called("sendMessage")[0]["reply_markup"]["inline_keyboard"]
    data = [row[0]["callback_data"] for row in keyboard]
    assert len(data[0].encode()) <= 64 and data[1] == "/deny"
    press = json.loads(json.dumps(fixture_body("callback_query")))
    press["callback_query"]["data"] = data[0]
    press["callback_query"]["message"]["reply_markup"] = {"inline_keyboard": keyboard}
    assert parse(telegram_channel, press).events[0].payload == long
    restarted = make(fake_telegram.api_url)
    inbound = parse(restarted, press).events[0]
    assert inbound.payload is None and inbound.text == "Track A1B2C3"
    assert resolve_choice(buttons, inbound).payload == long


async def test_a_button_press_is_answered_before_the_turn(
    telegram_channel: TelegramChannel, fake_telegram: FakeTelegram
):
    inbound = parse(telegram_channel, fixture_body("callback_query")).events[0]
    await telegram_channel.before_turn(inbound)
    assert fake_telegram.called("answerCallbackQuery") == [
        {"callback_query_id": "4382bfdwdsb323b2d9"}
    ]
    plain = Inbound(event_id="1", conversation=CONV, sender=Sender(id="1"), text="hi")
    await telegram_channel.before_turn(plain)
    assert len(fake_telegram.called("answerCallbackQuery")) == 1


async def test_typing_is_shown_when_the_turn_begins(
    telegram_channel: TelegramChannel, fake_telegram: FakeTelegram
):
    inbound = Inbound(event_id="1", conversation=CONV, sender=Sender(id="1"), text="hi")
    await telegram_channel.before_turn(inbound)
    [action] = fake_telegram.called("sendChatAction")
    assert action["action"] == "typing" and str(action["chat_id"]) == CONV.chat_id
    # A refused chat action is only a missed courtesy: the turn goes on, the reply is sent.
    fake_telegram.fail_next(400, "Bad Request: chat not found", method="sendChatAction")
    await telegram_channel.before_turn(inbound)
    assert not fake_telegram.failures
    await telegram_channel.send(Outbound(conversation=CONV, text="answer"))
    assert [s.text for s in fake_telegram.sent()] == ["answer"]


async def test_the_bots_name_comes_from_getme_when_not_set(fake_telegram: FakeTelegram):
    channel = make(fake_telegram.api_url)
    body = fixture_body("group_mention")
    assert parse(channel, body).events == (), "the @name is unknown before start"
    await channel.start()
    try:
        events = parse(channel, body).events
    finally:
        await channel.close()
    assert [e.text for e in events] == ["where is my order?"]


async def test_a_mention_of_someone_else_is_not_for_the_bot(telegram_channel: TelegramChannel):
    body = fixture_body("group_mention")
    body["message"]["text"] = "@other_bot where is my order?"
    body["message"]["entities"][0]["length"] = 10
    assert parse(telegram_channel, body).note == "group message not addressed to the bot"


async def test_an_edit_names_its_message_and_has_a_key_of_its_own(
    telegram_channel: TelegramChannel,
):
    body = fixture_body("edited_message")
    (edit,) = parse(telegram_channel, body).events
    original = {"update_id": 10010, "message": {**body["edited_message"], "text": "Edtied text"}}
    del original["message"]["edit_date"]
    (message,) = parse(telegram_channel, original).events
    assert (message.kind, message.message_id, message.target_id) == ("message", "1365", None)
    assert (edit.kind, edit.target_id, edit.text) == ("edit", "1365", "Edited text")
    assert edit.conversation == message.conversation
    assert edit.dedupe_key != message.dedupe_key
    assert parse(telegram_channel, body).events[0].dedupe_key == edit.dedupe_key  # a redelivery


async def test_edits_can_be_treated_as_new_messages(fake_telegram: FakeTelegram):
    """TELEGRAM_EDITS_AS_NEW keeps its meaning: the edit comes as a plain message."""
    channel = make(fake_telegram.api_url, edits_as_new=True)
    events = parse(channel, fixture_body("edited_message")).events
    assert [(e.event_id, e.text, e.kind) for e in events] == [("10011", "Edited text", "message")]


async def test_media_goes_out_as_photo_or_document_in_the_topic(
    telegram_channel: TelegramChannel, fake_telegram: FakeTelegram
):
    conv = CONV.model_copy(update={"thread_id": "42"})
    files = (
        Attachment(kind="image", url="https://cdn.test/parcel.jpg"),
        Attachment(kind="file", file_id="BQADBAADaQADl6tZR4e_sample", name="invoice.pdf"),
    )
    await telegram_channel.send(Outbound(conversation=conv, text="here", attachments=files))
    (photo,) = fake_telegram.called("sendPhoto")
    (document,) = fake_telegram.called("sendDocument")
    assert photo["photo"] == "https://cdn.test/parcel.jpg" and photo["message_thread_id"] == "42"
    assert document["document"] == "BQADBAADaQADl6tZR4e_sample"
    assert fake_telegram.sent()[0].thread_id == "42"


async def test_a_forum_topic_is_its_own_conversation(telegram_channel: TelegramChannel):
    body = text_update("hi", chat="1111111", event="topic")
    body["message"]["chat"] = {
        "id": -100777,
        "title": "Support",
        "type": "supergroup",
        "is_forum": True,
    }
    body["message"].update(
        message_thread_id=42,
        is_topic_message=True,
        text="@shop_test_bot hi",
        entities=[{"offset": 0, "length": 14, "type": "mention"}],
    )
    (event,) = parse(telegram_channel, body).events
    assert event.conversation.thread_id == "42" and event.conversation.chat_id == "-100777"


async def test_a_topic_message_without_a_thread_id_is_answered_in_the_chat(
    fake_telegram: FakeTelegram, tmp_path: Path
):
    """It was accepted, then every try of its turn failed on `int('None')` and it was
    dead-lettered unanswered."""
    body = text_update("hi", chat="1111111", event="topic-without-thread")
    body["message"]["is_topic_message"] = True
    req = CASE.sign(Request(json.dumps(body).encode()))
    settings = build_settings(CASE, fake_telegram, tmp_path)
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        status, _ = await gw.post(CASE, req)
        assert status == 200
        [sent] = await wait_sent(fake_telegram, 1)
        assert gw.services.storage.queue.dead == []  # type: ignore[attr-defined]
    assert sent.text == "#1 hi" and sent.thread_id is None


@pytest.mark.parametrize("thread", ["None", "42", 4.2, True, [42]])
async def test_a_thread_id_that_is_not_an_integer_is_refused(
    telegram_channel: TelegramChannel, thread: object
):
    body = text_update("hi", chat="1111111", event="bad-thread")
    body["message"].update(is_topic_message=True, message_thread_id=thread)
    with pytest.raises(PayloadError, match="message_thread_id"):
        parse(telegram_channel, body)


async def test_messages_to_one_chat_are_spaced_about_a_second(
    fake_telegram: FakeTelegram, tmp_path: Path
):
    settings = build_settings(CASE, fake_telegram, tmp_path)
    dialogue = EchoDialogue()
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=dialogue) as gw:
        await gw.post(CASE, CASE.sign(CASE.message("one", chat="1111111", event="s1")))
        await wait_sent(fake_telegram, 1)
        first = time.monotonic()
        await gw.post(CASE, CASE.sign(CASE.message("two", chat="1111111", event="s2")))
        await wait_sent(fake_telegram, 2)
        assert time.monotonic() - first >= 0.9


async def test_a_429_is_waited_out_and_the_reply_arrives_once(
    fake_telegram: FakeTelegram, tmp_path: Path
):
    settings = build_settings(CASE, fake_telegram, tmp_path)
    fake_telegram.fail_next(429, "Too Many Requests: retry after 1", retry_after=1)
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        started = time.monotonic()
        await gw.post(CASE, CASE.sign(CASE.message("hello", chat="1111111", event="fl")))
        await wait_sent(fake_telegram, 1)
        assert time.monotonic() - started >= 0.9
        # Once: a later message of the chat is answered next, and nothing else was sent.
        sent = await sentinel(gw, CASE, fake_telegram, event="fl-2")
        assert [s.text for s in sent] == ["#1 hello", f"#2 {SENTINEL}"]


@pytest.mark.parametrize(
    ("fixture", "path", "value"),
    [
        ("photo", ("message", "photo", 0, "file_size"), "big"),
        ("document", ("message", "document", "mime_type"), 7),
        ("location", ("message", "location", "latitude"), "north"),
        ("group_mention", ("message", "entities", 0, "offset"), "3"),
        ("callback_query", ("callback_query", "from"), None),
    ],
)
def test_wrongly_typed_fields_are_a_payload_error_not_a_crash(
    fixture: str, path: tuple[str | int, ...], value: object
) -> None:
    body = fixture_body(fixture)
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(PayloadError, match="malformed Telegram update"):
        parse(make("http://127.0.0.1:9/bot"), body)


def test_the_secret_is_checked_before_the_body() -> None:
    channel = make("http://127.0.0.1:9/bot")

    def headers_only(headers: dict[str, str]) -> WebhookRequest:
        return WebhookRequest("POST", "https://gateway.test/webhooks/telegram", headers, {}, b"")

    channel.precheck(headers_only({"x-telegram-bot-api-secret-token": SECRET_TOKEN}))
    for headers in ({}, {"x-telegram-bot-api-secret-token": SECRET_TOKEN + "x"}):
        with pytest.raises(VerificationError):
            channel.precheck(headers_only(headers))
