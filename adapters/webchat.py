"""The web chat channel: JSON frames over a WebSocket, for talking to the bot with no platform
account. The socket itself is served by `gateway/`; this module turns frames into Inbound events
and Outbound messages into frames."""

from __future__ import annotations

import json
import re
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from core.channel import BaseChannel, SentMessage, WebhookReply, WebhookRequest
from core.errors import PayloadError
from core.models import Capabilities, ConversationRef, Inbound, Outbound, Sender
from core.ports import Relay

Frame = dict[str, Any]
Sink = Callable[[Frame], Awaitable[None]]

_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_UNDELIVERED_KEEP = 20
_SESSIONS_KEEP = 10_000
"""Sessions remembered without an open socket (most recent kept): visitors who leave for good
must not stay in memory for the life of the process."""
RELAY_TOPIC = "webchat"


def valid_session(value: str | None) -> str | None:
    return value if value and _SESSION.match(value) else None


def render(msg: Outbound) -> Frame:
    return {
        "text": msg.text,
        "buttons": [{"label": b.label, "payload": b.payload} for b in msg.buttons],
    }


class WebChatChannel(BaseChannel):
    name: ClassVar[str] = "webchat"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=4000, buttons="native", max_buttons=12, max_button_label=80
    )

    def __init__(self, relay: Relay | None = None) -> None:
        """With a `relay` (several processes), `send` publishes the frame and every process
        delivers it to the sockets it holds: the worker that answers is not the `serve` process
        the browser is connected to."""
        self._sinks: dict[str, list[Sink]] = {}
        self._undelivered: OrderedDict[str, deque[Frame]] = OrderedDict()
        self._relay = relay
        self._known: OrderedDict[str, None] = OrderedDict()

    async def start(self) -> None:
        if self._relay is not None:
            await self._relay.subscribe(RELAY_TOPIC, self._relayed)

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.close()

    async def _relayed(self, data: bytes) -> None:
        item = json.loads(data)
        session = item["session"]
        if session in self._known:
            await self.deliver(session, item["frame"])

    def verify(self, req: WebhookRequest) -> None:
        raise PayloadError("the web chat talks over the WebSocket at /chat/ws, not a webhook")

    def parse(self, req: WebhookRequest) -> WebhookReply:
        raise PayloadError("the web chat talks over the WebSocket at /chat/ws, not a webhook")

    def inbound(self, session: str, data: str, max_chars: int) -> Inbound:
        """One frame from the browser: `{"text": "..."}` or `{"payload": "..."}` for a button."""
        try:
            frame = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: "[[[[...]]]]" nested too deep
            raise PayloadError('frame is not JSON; send {"text": "..."}') from None
        if not isinstance(frame, dict):
            raise PayloadError('frame must be a JSON object like {"text": "..."}')
        text, payload = frame.get("text"), frame.get("payload")
        if payload is not None:
            if not isinstance(payload, str) or not payload.strip() or len(payload) > 256:
                raise PayloadError("payload must be a non-empty string of at most 256 characters")
            label = frame.get("label")
            text = label if isinstance(label, str) else ""
        elif not isinstance(text, str):
            raise PayloadError('frame needs "text" (a string) or "payload"')
        elif not text.strip():
            raise PayloadError("empty message")
        if len(text) > max_chars:
            raise PayloadError(f"message too long: {len(text)} characters, at most {max_chars}")
        msg_id = frame.get("id")
        if not (isinstance(msg_id, str) and valid_session(msg_id)):
            msg_id = uuid.uuid4().hex
        # Scoped to the session: an id the browser picks cannot collide with (and be dropped as
        # a duplicate of) another visitor's message.
        event_id = f"{session}:{msg_id}"
        return Inbound(
            event_id=event_id,
            conversation=ConversationRef(channel=self.name, chat_id=session),
            sender=Sender(id=session, name="web visitor"),
            text=text,
            payload=payload,
        )

    def attach(self, session: str, sink: Sink) -> list[Frame]:
        """Register a socket; returns replies that came while no socket was open."""
        self._sinks.setdefault(session, []).append(sink)
        self._known[session] = None
        self._known.move_to_end(session)
        _trim(self._known)
        return list(self._undelivered.pop(session, ()))

    def detach(self, session: str, sink: Sink) -> None:
        sinks = self._sinks.get(session, [])
        if sink in sinks:
            sinks.remove(sink)
        if not sinks:
            self._sinks.pop(session, None)

    async def send(self, msg: Outbound) -> SentMessage:
        frame = render(msg)
        if self._relay is not None:
            item = {"session": msg.conversation.chat_id, "frame": frame}
            await self._relay.publish(RELAY_TOPIC, json.dumps(item).encode())
        else:
            await self.deliver(msg.conversation.chat_id, frame)
        return SentMessage()

    async def deliver(self, session: str, frame: Frame) -> None:
        """To this process's sockets of `session`, or kept for its next socket."""
        sinks = list(self._sinks.get(session, ()))
        delivered = 0
        for sink in sinks:
            try:
                await sink(frame)
                delivered += 1
            except (ConnectionError, RuntimeError):
                self.detach(session, sink)
        if not delivered:
            box = self._undelivered.setdefault(session, deque(maxlen=_UNDELIVERED_KEEP))
            box.append(frame)
            self._undelivered.move_to_end(session)
            _trim(self._undelivered)


def _trim(table: OrderedDict[str, Any]) -> None:
    while len(table) > _SESSIONS_KEEP:
        table.popitem(last=False)
