"""Slack's interactivity requests (form-encoded `payload=`): a `block_actions` button press in a
conversation becomes an `Inbound` carrying the button's payload."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from core.channel import WebhookReply, json_object
from core.errors import PayloadError
from core.models import ConversationRef, Inbound, Sender
from core.render import PayloadKeys


def parse_interaction(body: bytes, channel_name: str, keys: PayloadKeys) -> WebhookReply:
    fields = parse_qs(body.decode("utf-8", "replace"))
    if "payload" not in fields:
        raise PayloadError("form body without payload=")
    data = json_object(fields["payload"][0].encode())
    if data.get("type") != "block_actions":
        return WebhookReply(note=f"interaction {data.get('type')!r} is not handled")
    actions = data.get("actions")
    user = _dig(data, "user", "id")
    channel = _dig(data, "channel", "id") or _dig(data, "container", "channel_id")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise PayloadError("block_actions without actions")
    if not user:
        raise PayloadError("block_actions without user.id")
    if not channel:
        return WebhookReply(note="button press outside a conversation (modal, home tab)")
    action = actions[0]
    value = action.get("value") or _dig(action, "selected_option", "value")
    if not isinstance(value, str):
        raise PayloadError("block_actions action without a value")
    label = _dig(action, "text", "text") or ""
    thread = _dig(data, "container", "thread_ts") or _dig(data, "message", "thread_ts")
    stamp = action.get("action_ts") or data.get("trigger_id") or ""
    meta = {"action_ts": str(stamp)}
    if thread:
        meta["thread_ts"] = thread
    inbound = Inbound(
        event_id=f"action:{stamp}:{user}",
        conversation=ConversationRef(channel=channel_name, chat_id=channel, thread_id=thread),
        sender=Sender(id=user, name=_dig(data, "user", "username")),
        # An unknown key (issued before a restart): the label stands for the choice.
        text=label,
        payload=keys.decode(value),
        meta=meta,
        raw=data,
    )
    return WebhookReply(events=(inbound,))


def _dig(data: Any, *path: str) -> str | None:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data if isinstance(data, str) and data else None
