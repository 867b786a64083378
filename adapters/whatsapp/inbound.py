"""Twilio's WhatsApp webhook form turned into Inbound events: messages, quick-reply presses,
media and locations; status callbacks are recognised and only recorded."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from core.errors import PayloadError
from core.models import Attachment, AttachmentKind, ConversationRef, Inbound, Sender

PREFIX = "whatsapp:"
OUTSIDE_WINDOW = "63016"
"""Twilio's error for a free-form message outside WhatsApp's 24-hour customer-service window."""

_MAX_MEDIA = 10
_MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
"""A message's id as Twilio documents it (WhatsApp's too): SM, or MM for media, and 32 hex
digits. It is the dedupe key, so a form whose id is anything else is refused."""
_KINDS: dict[str, AttachmentKind] = {"image": "image", "audio": "audio", "video": "video"}


def is_sid(value: str) -> bool:
    return _MESSAGE_SID.fullmatch(value) is not None


def form(body: bytes) -> dict[str, str]:
    """The urlencoded form Twilio posts. Twilio sends each key once; a repeated key keeps its
    last value, as the signature check sees it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8 form data") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def address(value: str) -> str:
    """`whatsapp:+14155238886` → `+14155238886`: the chat id keeps the number only."""
    return value[len(PREFIX) :] if value.startswith(PREFIX) else value


def status_note(params: Mapping[str, str]) -> str:
    """A status callback in one line for the log: never answered, only recorded."""
    note = f"status callback {params.get('MessageSid', '?')}: {params['MessageStatus']}"
    code = params.get("ErrorCode")
    if code == OUTSIDE_WINDOW:
        note += (
            " (error 63016: outside the 24-hour window, a free-form reply was refused;"
            " answer with a ContentSid template)"
        )
    elif code:
        note += f" (error {code})"
    return note


def _media(params: Mapping[str, str]) -> list[Attachment]:
    try:
        count = int(params.get("NumMedia") or 0)
    except ValueError:
        raise PayloadError("NumMedia is not a number") from None
    if not 0 <= count <= _MAX_MEDIA:
        raise PayloadError(f"NumMedia out of range: {count}")
    found = []
    for i in range(count):
        url = params.get(f"MediaUrl{i}")
        if not url:
            raise PayloadError(f"NumMedia is {count} but MediaUrl{i} is missing")
        mime = params.get(f"MediaContentType{i}") or None
        kind = _KINDS.get((mime or "").split("/", 1)[0], "file")
        found.append(Attachment(kind=kind, mime_type=mime, url=url, file_id=url.rsplit("/", 1)[-1]))
    return found


def _location(params: Mapping[str, str]) -> Attachment | None:
    lat, lon = params.get("Latitude"), params.get("Longitude")
    if not lat or not lon:
        return None
    try:
        latitude, longitude = float(lat), float(lon)
    except ValueError:
        raise PayloadError("Latitude/Longitude are not numbers") from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise PayloadError("Latitude/Longitude out of range")
    name = params.get("Label") or params.get("Address") or None
    return Attachment(kind="location", latitude=latitude, longitude=longitude, name=name)


def message(params: Mapping[str, str], channel: str) -> Inbound | None:
    """One incoming message; None when it carries nothing the bot can read (a reaction)."""
    sid, sender = params.get("MessageSid"), params.get("From")
    if not sid or not sender:
        raise PayloadError("form lacks MessageSid or From")
    if not is_sid(sid):
        raise PayloadError("MessageSid is not SM or MM and 32 hex digits")
    number = address(sender)
    attachments = _media(params)
    place = _location(params)
    if place is not None:
        attachments.append(place)
    payload = params.get("ButtonPayload") or None
    text = params.get("Body", "")
    if payload and not text:
        text = params.get("ButtonText", "")
    if not text.strip() and not attachments and not payload:
        return None
    meta = {
        k: v
        for k, v in {
            "to": params.get("To", ""),
            "wa_id": params.get("WaId", ""),
            "message_type": params.get("MessageType", ""),
            "button_text": params.get("ButtonText", ""),
            "original_replied_message_sid": params.get("OriginalRepliedMessageSid", ""),
        }.items()
        if v
    }
    return Inbound(
        event_id=sid,
        conversation=ConversationRef(channel=channel, chat_id=number),
        sender=Sender(id=params.get("WaId") or number, name=params.get("ProfileName") or None),
        text=text,
        attachments=tuple(attachments),
        payload=payload,
        meta=meta,
        raw=dict(params),
    )
