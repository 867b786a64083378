"""The web chat channel: JSON frames over a WebSocket, for talking to the bot with no platform
account. The socket itself is served by `gateway/`; this module turns frames into Inbound events
and Outbound messages into frames."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import structlog

from core.channel import BaseChannel, SentMessage, WebhookReply, WebhookRequest
from core.errors import PayloadError, StoreUnavailable
from core.models import Capabilities, ConversationRef, Inbound, Outbound, Sender
from core.ports import Relay, Transcript

Frame = dict[str, Any]
Sink = Callable[[Frame], Awaitable[None]]

_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_UNDELIVERED_KEEP = 20
_SESSIONS_KEEP = 10_000
"""Sessions remembered without an open socket (most recent kept): visitors who leave for good
must not stay in memory for the life of the process."""
RELAY_TOPIC = "webchat"
HISTORY_KEEP = 100
"""Entries a page is sent when it opens (the newest)."""

log = structlog.get_logger(__name__)


def valid_session(value: str | None) -> str | None:
    return value if value and _SESSION.match(value) else None


def render(msg: Outbound, at: float | None = None) -> Frame:
    return {
        "text": msg.text,
        "buttons": [{"label": b.label, "payload": b.payload} for b in msg.buttons],
        "at": round(time.time() if at is None else at, 3),
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
        self.transcript: Transcript | None = None
        """Where the conversation is kept for the page to show again (set by the gateway from
        its backends). With one, a reply sent while no socket is open waits there, not here."""

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
        meta: dict[str, str] = {}
        if isinstance(msg_id, str) and valid_session(msg_id):
            meta["client_id"] = msg_id  # the page's own id: acknowledged, and shown once
        else:
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
            meta=meta,
        )

    async def remember(self, inbound: Inbound) -> None:
        """The visitor's message, kept in the transcript (before it is queued, so it comes
        before the replies). `id` is the page's own id of the message."""
        if self.transcript is None:
            return
        entry = {
            "from": "user",
            "text": inbound.text,
            "at": round(inbound.received_at, 3),
            "id": inbound.event_id.partition(":")[2],
        }
        try:
            await self.transcript.add(inbound.conversation.chat_id, entry)
        except StoreUnavailable as exc:  # the message still goes to the bot
            log.warning("webchat.transcript_failed", error=str(exc))

    async def history(self, session: str, after: int = 0) -> list[Frame]:
        """What the page of `session` has not shown yet: everything kept when `after` is 0
        (a new page), else the entries numbered above `after` (a reconnect)."""
        if self.transcript is None:
            return []
        try:
            return await self.transcript.since(session, after, HISTORY_KEEP)
        except StoreUnavailable as exc:
            log.warning("webchat.transcript_failed", error=str(exc))
            return []

    async def before_turn(self, inbound: Inbound) -> None:
        """The page shows that the bot is typing until the next reply (or a while)."""
        await self._out(inbound.conversation.chat_id, {"typing": True})

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
        session = msg.conversation.chat_id
        if self.transcript is not None:
            try:
                frame["seq"] = await self.transcript.add(session, {"from": "bot", **frame})
            except StoreUnavailable as exc:  # the reply still goes to the open page
                log.warning("webchat.transcript_failed", error=str(exc))
        await self._out(session, frame)
        return SentMessage()

    async def _out(self, session: str, frame: Frame) -> None:
        if self._relay is not None:
            item = {"session": session, "frame": frame}
            await self._relay.publish(RELAY_TOPIC, json.dumps(item).encode())
        else:
            await self.deliver(session, frame)

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
        # Kept for the next socket unless the transcript has it (`seq`) or it is only news
        # of the moment (typing).
        if not delivered and "seq" not in frame and not frame.get("typing"):
            box = self._undelivered.setdefault(session, deque(maxlen=_UNDELIVERED_KEEP))
            box.append(frame)
            self._undelivered.move_to_end(session)
            _trim(self._undelivered)


def _trim(table: OrderedDict[str, Any]) -> None:
    while len(table) > _SESSIONS_KEEP:
        table.popitem(last=False)
