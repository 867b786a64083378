"""The terminal channel: one user message per input line, bot messages printed with their
options numbered, so a conversation can be typed or scripted."""

from __future__ import annotations

import uuid
from typing import ClassVar, TextIO

from core.channel import BaseChannel, SentMessage, WebhookReply, WebhookRequest
from core.errors import PayloadError
from core.models import Capabilities, ConversationRef, Inbound, Outbound, Sender


class TerminalChannel(BaseChannel):
    name: ClassVar[str] = "terminal"
    capabilities: ClassVar[Capabilities] = Capabilities(max_text=100_000, buttons="numbered")

    def __init__(self, out: TextIO, session: str = "local"):
        self._out = out
        self.session = session

    def verify(self, req: WebhookRequest) -> None:
        raise PayloadError("the terminal channel has no webhook")

    def parse(self, req: WebhookRequest) -> WebhookReply:
        raise PayloadError("the terminal channel has no webhook")

    def inbound(self, line: str) -> Inbound:
        return Inbound(
            event_id=uuid.uuid4().hex,
            conversation=ConversationRef(channel=self.name, chat_id=self.session),
            sender=Sender(id=self.session, name="terminal user"),
            text=line.rstrip("\r\n"),
        )

    async def send(self, msg: Outbound) -> SentMessage:
        lines = [f"bot> {msg.text}" if msg.text else "bot>"]
        lines += [f"     {i}. {b.label}" for i, b in enumerate(msg.buttons, 1)]
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()
        return SentMessage()
