"""Test doubles for the engine's seams (intent model, dialogue) and a recording channel, so the
foundation can be tested on its own. The product wires the real ones."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from core.channel import BaseChannel, SentMessage, WebhookReply, WebhookRequest
from core.errors import ChannelSendError
from core.models import Button, Capabilities, Inbound, Outbound
from core.ports import NluResult, TurnOutcome
from core.session import Session


class KeywordNlu:
    """Picks an intent by keyword; 'boom' raises, to test failure handling."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.loaded = True

    async def parse(self, text: str) -> NluResult:
        self.calls.append(text)
        if "boom" in text:
            raise RuntimeError("model exploded")
        intent = "greet" if "hi" in text.lower() else "other"
        return NluResult(text=text, intent=intent, confidence=0.9)

    def ready(self) -> bool:
        return self.loaded


class EchoDialogue:
    """Answers every turn with what it heard and counts turns per conversation in the session."""

    def __init__(self, delay: float = 0.0, buttons: tuple[Button, ...] = ()) -> None:
        self.delay = delay
        self.buttons = buttons
        self.seen: list[tuple[str, str, str | None]] = []

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.seen.append((session.key, inbound.text, inbound.payload))
        count = int(session.slots.get("turns", 0)) + 1
        session.slots["turns"] = count
        reply = Outbound(
            conversation=inbound.conversation,
            text=f"#{count} {inbound.payload or inbound.text}",
            buttons=self.buttons,
        )
        return TurnOutcome(replies=[reply], intent=nlu.intent, confidence=nlu.confidence)


class RecordingChannel(BaseChannel):
    """A channel that keeps what it was asked to send; `fail_next` makes sends fail."""

    name: ClassVar[str] = "test"
    capabilities: ClassVar[Capabilities] = Capabilities(max_text=1000)

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.fail_next: list[ChannelSendError] = []

    def verify(self, req: WebhookRequest) -> None:
        return None

    def parse(self, req: WebhookRequest) -> WebhookReply:
        return WebhookReply()

    async def send(self, msg: Outbound) -> SentMessage:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.sent.append(msg)
        return SentMessage()

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for m in self.sent if chat_id is None or m.conversation.chat_id == chat_id]


@pytest.fixture
def recording_channel() -> RecordingChannel:
    return RecordingChannel()
