"""Slack's Events API bodies, typed: the envelope and the `message`/`app_mention` event as Slack's
reference documents them, decoded by msgspec straight from the body into the fields the gateway
reads (everything else in the body is skipped, never built), then turned into an `Inbound`.

A message body is decoded once, in C, with each field's type checked on the way; the hand-written
checks of a parsed dict this replaces, and the dicts of fields nobody reads, cost more than the
decode itself on the webhook hot path (`bench/ingress.py`)."""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec

from adapters.slack.blocks import unescape
from core.channel import WebhookReply, json_object, strict_json
from core.errors import PayloadError
from core.models import Attachment, AttachmentKind, Inbound, conversation_ref, sender_ref

Kind = Literal["event_callback", "url_verification"]
"""The Events API requests the gateway answers; any other is accepted and ignored."""
Handled = Literal["message", "app_mention"]
"""The events that are a user's message to the bot; any other is accepted and ignored."""
Accepted = Literal["file_share", "thread_broadcast", "me_message"]
"""A message's subtypes that are still a user writing (no subtype, the usual, too)."""
Change = Literal["message_changed", "message_deleted"]
"""A message's subtypes that change an earlier message: an edit, a delete. The other subtypes
(joins, bots' messages...) are accepted and ignored."""
KINDS = frozenset(get_args(Kind))
HANDLED = frozenset(get_args(Handled))
ACCEPTED_SUBTYPES = frozenset(get_args(Accepted)) | frozenset(get_args(Change))
FROM_A_BOT = "message from a bot (possibly ourselves) ignored"


class File(msgspec.Struct):
    """A file object of a message (`files`); `url_private` needs the bot token to fetch."""

    id: str | None = None
    name: str | None = None
    mimetype: str | None = None
    size: int | None = None
    url_private: str | None = None


class Edited(msgspec.Struct):
    """A changed message's `edited`: who edited it, when. A `message_changed` without it is
    Slack updating the message itself (a link unfurled, a thread's reply count), no edit."""

    user: str | None = None
    ts: str | None = None


class Message(msgspec.Struct):
    """The message as it is now (`message` of a `message_changed`) or was (`previous_message`
    of a `message_deleted`)."""

    user: str | None = None
    ts: str | None = None
    text: str | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    edited: Edited | None = None


class Event(msgspec.Struct):
    """The inner event of a `message` or `app_mention`: https://docs.slack.dev/reference/events/message
    (the kinds as `Literal`s: a value decodes to the shared constant, no new string)."""

    type: Handled
    channel: str | None = None
    user: str | None = None
    ts: str | None = None
    subtype: Accepted | Change | None = None
    thread_ts: str | None = None
    text: str | None = None
    bot_id: str | None = None
    files: tuple[File, ...] = ()
    message: Message | None = None
    previous_message: Message | None = None
    deleted_ts: str | None = None


class Authorization(msgspec.Struct):
    """Who the event is delivered to (`authorizations`): the bot's own user id among them."""

    user_id: str | None = None
    is_bot: bool = False


class Envelope(msgspec.Struct):
    """An Events API request: https://docs.slack.dev/apis/events-api/#callback-field"""

    type: Kind
    event_id: str | None = None
    event: Event | None = None
    authorizations: tuple[Authorization, ...] = ()
    challenge: str | None = None


_DECODER = msgspec.json.Decoder(Envelope)


def parse_events(body: bytes, channel_name: str) -> WebhookReply:
    """What to queue and answer for an Events API request body."""
    try:
        envelope = _DECODER.decode(body)
    except msgspec.ValidationError as exc:  # a DecodeError too: caught first
        return _untyped(json_object(body), exc)
    except (msgspec.DecodeError, RecursionError):
        return _read_again(body, channel_name)
    return _reply(envelope, channel_name, body)


def _read_again(body: bytes, channel_name: str) -> WebhookReply:
    """A body msgspec could not read: JSON with lone surrogate escapes (valid JSON, not valid
    Unicode) is read again with U+FFFD in their place; anything else (not JSON, not UTF-8,
    nested deeper than a parser goes) is a 400."""
    clean = strict_json(body)
    try:
        envelope = _DECODER.decode(clean)
    except msgspec.ValidationError as exc:
        return _untyped(json_object(body), exc)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise PayloadError(f"body is not JSON Slack sends: {exc}") from None
    return _reply(envelope, channel_name, body)


def _untyped(data: dict[str, Any], exc: msgspec.ValidationError) -> WebhookReply:
    """A JSON object that is not a typed envelope: a request, an event or a message subtype of
    another kind (whose fields may be objects where a message has strings: `channel_created`,
    `user_change`) is accepted and ignored; a message or a challenge with a field of the wrong
    type is a 400 naming it."""
    kind = data.get("type")
    event = data.get("event")
    if not isinstance(kind, str):
        raise PayloadError("no event type: not a Slack Events API body")
    if kind not in KINDS:
        return WebhookReply(note=f"Slack request type {kind!r} is not handled")
    if kind == "event_callback" and isinstance(event, dict):
        event_kind = event.get("type")
        if not isinstance(event_kind, str) or event_kind not in HANDLED:
            return WebhookReply(note=f"event {event_kind!r} is not handled")
        subtype = event.get("subtype")
        if isinstance(subtype, str) and subtype not in ACCEPTED_SUBTYPES:
            return WebhookReply(note=f"message subtype {subtype!r} ignored")
    raise PayloadError(f"Slack {kind} body: {exc}")


def _reply(envelope: Envelope, channel_name: str, body: bytes) -> WebhookReply:
    kind = envelope.type
    if kind == "url_verification":
        if envelope.challenge is None:
            raise PayloadError("url_verification without a challenge string")
        return WebhookReply(body=envelope.challenge.encode(), note="url_verification answered")
    event, event_id = envelope.event, envelope.event_id  # an event_callback's
    if event is None or event_id is None:
        raise PayloadError("event_callback without an event object or event_id")
    if event.subtype == "message_changed" or event.subtype == "message_deleted":
        return _change(envelope, event, event_id, channel_name, body)
    channel, user, ts, thread = event.channel, event.user, event.ts, event.thread_ts or None
    if event.bot_id:
        return WebhookReply(note=FROM_A_BOT)
    if not (channel and user and ts):
        raise PayloadError(f"{event.type} event without channel, user or ts")
    for auth in envelope.authorizations:  # usually one: the bot's own user among them
        if auth.is_bot and auth.user_id == user:
            return WebhookReply(note=FROM_A_BOT)
    text = event.text or ""
    if "<@" in text:  # the guards of the two calls, here: most messages need neither
        text = strip_mentions(text, envelope.authorizations)
    if "&" in text:
        text = unescape(text)
    meta = {"slack_event_id": event_id, "ts": ts}
    if thread:
        meta["thread_ts"] = thread
    try:  # Slack signs UTF-8 only (`verify` refuses the rest); msgspec reads only what it decodes
        raw = body.decode()
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None
    inbound = Inbound.build(
        # channel + ts, not event_id: Slack sends one message twice (as `message` and as
        # `app_mention`, each with its own event_id) when the bot is mentioned; both, and every
        # retry of either, collapse to one key.
        event_id=f"{channel}:{ts}",
        # The shared instances of recent conversations and senders.
        conversation=conversation_ref(channel_name, channel, thread),
        sender=sender_ref(user),
        text=text.strip(),
        meta=meta,
        raw=raw,
        attachments=tuple(attachment_of(f) for f in event.files) if event.files else (),
        message_id=ts,  # what a later edit or delete names
    )
    return WebhookReply(events=(inbound,))


def _change(
    envelope: Envelope, event: Event, event_id: str, channel_name: str, body: bytes
) -> WebhookReply:
    """A `message_changed` (an edit) or `message_deleted` of a user's message, as an event of
    that kind naming the message's ts. Its key is its own (the edit's time, or the deletion),
    so the original message is not taken for a duplicate, and a retried change is."""
    edit = event.subtype == "message_changed"
    msg = event.message if edit else event.previous_message
    channel = event.channel
    if msg is None:
        if edit:
            raise PayloadError("message_changed without the message")
        return WebhookReply(note="message_deleted without previous_message: its author is unknown")
    target = msg.ts if edit else event.deleted_ts or msg.ts
    if not (channel and target):
        raise PayloadError(f"{event.subtype} event without channel or the message's ts")
    if msg.bot_id or msg.subtype == "bot_message":
        return WebhookReply(note=FROM_A_BOT)
    user = msg.user
    if not user:
        return WebhookReply(note=f"{event.subtype} of a message without a user ignored")
    for auth in envelope.authorizations:
        if auth.is_bot and auth.user_id == user:
            return WebhookReply(note=FROM_A_BOT)
    if edit and msg.edited is None:
        return WebhookReply(note="message_changed without `edited` (not an edit) ignored")
    text = ""
    if edit:
        text = msg.text or ""
        if "<@" in text:
            text = strip_mentions(text, envelope.authorizations)
        if "&" in text:
            text = unescape(text)
    # A thread's parent carries thread_ts == its own ts; it was posted outside any thread.
    thread = msg.thread_ts if msg.thread_ts and msg.thread_ts != target else None
    when = (msg.edited.ts if msg.edited is not None else None) or event.ts or ""
    meta = {"slack_event_id": event_id, "ts": target}
    if thread:
        meta["thread_ts"] = thread
    try:
        raw = body.decode()
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None
    inbound = Inbound.model_validate(
        {
            "event_id": f"{channel}:{target}:edited:{when}"
            if edit
            else f"{channel}:{target}:deleted",
            "conversation": conversation_ref(channel_name, channel, thread),
            "sender": sender_ref(user),
            "text": text.strip(),
            "meta": meta,
            "raw": raw,
            "kind": "edit" if edit else "delete",
            "message_id": target,
            "target_id": target,
        }
    )
    return WebhookReply(events=(inbound,))


def strip_mentions(text: str, authorizations: tuple[Authorization, ...]) -> str:
    """The bot's own mentions taken out of a message's text (`<@UBOT> where is my order`)."""
    for auth in authorizations:
        if auth.is_bot and auth.user_id:
            text = text.replace(f"<@{auth.user_id}>", "")
    return text


def _kind(mime: str) -> AttachmentKind:
    top = mime.split("/", 1)[0]
    if top == "image":
        return "image"
    if top in ("audio", "video"):
        return top  # type: ignore[return-value]
    return "file"


def attachment_of(file: File) -> Attachment:
    return Attachment(
        kind=_kind(file.mimetype or ""),
        mime_type=file.mimetype,
        size=file.size,
        name=file.name,
        url=file.url_private,
        file_id=file.id,
    )
