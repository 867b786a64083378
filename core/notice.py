"""The team is told when a customer starts waiting for a person: one message to a team channel
(a Slack channel, sent by that channel's own client through the outbox) with the customer's
channel, what the bot understood, the start of what they wrote and a link to the conversation
in the console."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import structlog

from core.conversations import Conversation, Transition
from core.models import ConversationRef, Outbound

log = structlog.get_logger(__name__)

Deliver = Callable[[str, Outbound], Awaitable[bool]]
"""`Outbox.deliver`: sends once under an idempotency key."""

SUMMARY = 120
"""Characters of the customer's last words in the notice."""
TIMEOUT = 5.0
"""At most this long inside the turn: the customer's own reply waits on it."""

_SPACE = re.compile(r"\s+")


def summary(text: str, limit: int = SUMMARY) -> str:
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def conversation_link(console_url: str | None, conversation_id: int) -> str | None:
    """The console page opened on one conversation (the page reads the fragment)."""
    if not console_url:
        return None
    return f"{console_url.rstrip('/')}#conversation-{conversation_id}"


class WaitingNotice:
    """Posts "a customer is waiting" to `to` once per handoff (the transition is the
    idempotency key, so a turn run again posts nothing new). Best effort: a refused or slow
    post is logged and the turn goes on."""

    def __init__(self, deliver: Deliver, to: ConversationRef, console_url: str | None):
        self._deliver = deliver
        self._to = to
        self._console_url = console_url

    def text(self, conv: Conversation, said: str) -> str:
        parts = [conv.channel, conv.intent or "no intent"]
        if said.strip():
            parts.append(f"“{summary(said)}”")
        text = "A customer is waiting: " + ", ".join(parts)
        link = conversation_link(self._console_url, conv.id)
        return f"{text}\n{link}" if link else text

    async def tell(self, conv: Conversation, moved: Transition, said: str) -> None:
        msg = Outbound(conversation=self._to, text=self.text(conv, said))
        key = f"waiting-notice:{conv.id}:{moved.at:.6f}"
        try:
            await asyncio.wait_for(self._deliver(key, msg), TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the team misses one notice; the queue has it
            log.warning("desk.notice_failed", conversation=conv.key, error=str(exc) or repr(exc))
