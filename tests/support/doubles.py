"""Test doubles for the engine's seams (intent model, dialogue) and a recording channel, so the
foundation can be tested on its own. The product wires the real ones."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import ClassVar

import aiohttp
import pytest

from core.channel import BaseChannel, SentMessage, Step, WebhookReply, WebhookRequest, send_steps
from core.errors import ChannelSendError, ChannelUnreachable, PayloadError, VerificationError
from core.models import Button, Capabilities, ConversationRef, Inbound, Outbound, Sender
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


SIGNATURE = "x-sig"
"""The header a signed `RecordingChannel` reads: HMAC-SHA256 of the body, hex."""


def sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class RecordingChannel(BaseChannel):
    """The one channel double of the suite: it keeps what it is asked to send (`sent`,
    `texts()`) and counts the platform calls (`calls`). The variants tests need are arguments:

    - `secret`: a minimal platform webhook, a JSON `{"id", "chat", "text"[, "sender"]}` body
      with `sign(secret, body)` in `X-Sig`, answered `ok`; without it every request is accepted
      and carries no event.
    - `fail_next`: errors the next sends raise, one each; `fail_calls`: the platform calls
      (counted from 1) that fail, and how. `per_line`: each line of a message is its own
      platform call (what a split reply does), so a failure can fall between two of them.
    - `keep=False`: count and forget, for soaks that measure the gateway, not the double.
    - `delay`: seconds each platform call takes.
    - `forward_to`: each send is also POSTed as `{"chat", "text", "buttons", "pid"}` to this
      URL, for gateways in other processes (a 5xx or no answer is `ChannelUnreachable`).
    - `fail_start` / `fail_close`: what `start` / `close` raise; `started` / `closed` say
      whether they ran.
    """

    name: ClassVar[str] = "test"
    capabilities: ClassVar[Capabilities] = Capabilities(max_text=1000)

    def __init__(
        self,
        name: str = "test",
        *,
        capabilities: Capabilities | None = None,
        secret: bytes | None = None,
        fail_calls: Mapping[int, ChannelSendError] | None = None,
        per_line: bool = False,
        keep: bool = True,
        delay: float = 0.0,
        forward_to: str | None = None,
        fail_start: Exception | None = None,
        fail_close: Exception | None = None,
    ) -> None:
        self.name = name  # type: ignore[misc]
        if capabilities is not None:
            self.capabilities = capabilities  # type: ignore[misc]
        self.secret = secret
        self.sent: list[Outbound] = []
        self.delivered: list[str] = []
        self.calls = 0
        self.fail_next: list[ChannelSendError] = []
        self.fail_calls = dict(fail_calls or {})
        self.per_line = per_line
        self.keep = keep
        self.delay = delay
        self.forward_to = forward_to
        self.fail_start = fail_start
        self.fail_close = fail_close
        self.started = self.closed = False
        self._http: aiohttp.ClientSession | None = None

    def verify(self, req: WebhookRequest) -> None:
        if self.secret is not None and not hmac.compare_digest(
            sign(self.secret, req.body), req.header(SIGNATURE)
        ):
            raise VerificationError("bad X-Sig")

    def parse(self, req: WebhookRequest) -> WebhookReply:
        if self.secret is None:
            return WebhookReply()
        try:
            data = json.loads(req.body)
            chat = str(data["chat"])
            inbound = Inbound(
                event_id=str(data["id"]),
                conversation=ConversationRef(channel=self.name, chat_id=chat),
                sender=Sender(id=str(data.get("sender", chat))),
                text=str(data["text"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"not a test event: {exc}") from None
        return WebhookReply(events=[inbound], body=b"ok")

    async def start(self) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        if self.forward_to is not None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.started = True

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self.fail_close is not None:
            raise self.fail_close
        self.closed = True

    async def send(self, msg: Outbound) -> SentMessage:
        if self.fail_next:
            raise self.fail_next.pop(0)
        parts = msg.text.split("\n") if self.per_line else [msg.text]
        steps: list[Step] = [lambda part=part: self._call(part) for part in parts]
        sent = await send_steps(msg, steps)
        if self.keep:
            self.sent.append(msg)
        if self.forward_to is not None:
            await self._forward(msg)
        return sent

    async def _call(self, part: str) -> SentMessage:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        failure = self.fail_calls.get(self.calls)
        if failure is not None:
            raise failure
        if self.keep:
            self.delivered.append(part)
        return SentMessage(platform_id=part if self.per_line else None)

    async def _forward(self, msg: Outbound) -> None:
        assert self._http is not None, "a forwarding channel sends only once started"
        body = {
            "chat": msg.conversation.chat_id,
            "text": msg.text,
            "buttons": [b.payload for b in msg.buttons],
            "pid": os.getpid(),
        }
        try:
            async with self._http.post(self.forward_to or "", json=body) as resp:
                if resp.status >= 500:
                    raise ChannelUnreachable(f"recorder said {resp.status}")
        except aiohttp.ClientError as exc:
            raise ChannelUnreachable(f"recorder unreachable: {exc}") from exc

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for m in self.sent if chat_id is None or m.conversation.chat_id == chat_id]


@pytest.fixture
def recording_channel() -> RecordingChannel:
    return RecordingChannel()
