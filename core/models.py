"""The normalised message models every channel translates to and from."""

from __future__ import annotations

import functools
import re
import time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SkipValidation,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticSerializationError, core_schema

_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: str) -> str:
    """A lone surrogate (JSON's `"\\ud800"`, undecodable stdin bytes) would be accepted as text
    and then fail every JSON write of the event: the queue, the session store, the spill file. It
    becomes U+FFFD at the door instead. ASCII text (most ids, most messages) is known clean
    without encoding it: `isascii` reads a flag the string already carries."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


class _UserTextSchema:
    """`UserText`'s validation, in two tries: a string pydantic-core reads as UTF-8 (any length
    constraint makes it read the string, which fails for a lone surrogate), else a string with
    its lone surrogates replaced (`without_lone_surrogates`). Text without one, nearly all of it,
    is validated without a call into Python, where the `AfterValidator` before it made one for
    every text field of every model validated (an event's id, text and meta, a sender's id)."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.union_schema(
            [
                core_schema.str_schema(min_length=0),
                core_schema.no_info_after_validator_function(
                    without_lone_surrogates, core_schema.str_schema()
                ),
            ],
            mode="left_to_right",
            custom_error_type="string_type",
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string"}


UserText = Annotated[str, _UserTextSchema]
"""Text that came from a user or a platform."""


class Frozen(BaseModel):
    """Base of the normalised models: immutable, unknown fields refused, bytes as base64 in
    JSON."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )


class ConversationRef(Frozen):
    """Where a conversation lives: a channel, its chat, and a thread inside it if any."""

    channel: str
    chat_id: str
    thread_id: str | None = None

    @property
    def key(self) -> str:
        """Stable key for locks, store keys and per-conversation ordering."""
        base = f"{self.channel}:{self.chat_id}"
        return f"{base}:{self.thread_id}" if self.thread_id else base


class Sender(Frozen):
    """Who wrote a message: the platform's id for them, and their display name when known."""

    id: UserText
    name: UserText | None = None


SHARED_REFS = 16_384
"""How many recent conversations and senders `conversation_ref` and `sender_ref` keep."""


@functools.lru_cache(maxsize=SHARED_REFS)
def conversation_ref(channel: str, chat_id: str, thread_id: str | None = None) -> ConversationRef:
    """The `ConversationRef` of a recent conversation, shared by its events: it is frozen, so
    one instance serves them all, and validating a new one for every event costs about a sixth
    of a Slack webhook's parse (the adapters' hot path)."""
    return ConversationRef(channel=channel, chat_id=chat_id, thread_id=thread_id)


@functools.lru_cache(maxsize=SHARED_REFS)
def sender_ref(sender_id: str, name: str | None = None) -> Sender:
    """The `Sender` of a recent user, shared as `conversation_ref` shares conversations."""
    return Sender(id=sender_id, name=name)


AttachmentKind = Literal["image", "audio", "video", "file", "location", "sticker", "other"]


class Attachment(Frozen):
    """A piece of media; `url` or `file_id` is what the channel fetches it by, with its
    credentials."""

    kind: AttachmentKind = "file"
    mime_type: str | None = None
    size: int | None = None
    name: UserText | None = None
    url: str | None = None
    file_id: str | None = None
    content: bytes | None = Field(default=None, repr=False)
    latitude: float | None = None
    longitude: float | None = None


class Button(Frozen):
    """A choice offered with a reply: what it says, and the payload a press sends back."""

    label: str
    payload: str


InboundKind = Literal["message", "edit", "delete"]
"""What a user did: wrote a message, changed one they wrote, or took one back."""


class Inbound(Frozen):
    """One user message as the core sees it, whatever channel it came from.

    `kind` says whether the user wrote it, edited an earlier message (`text` is then the new
    text) or deleted one; for an edit or a delete `target_id` is the `message_id` of the message
    it changes. `message_id` is the platform's id of the message itself (a Telegram
    message_id, a Slack ts), set where the platform can later edit or delete it. Entries queued
    before these fields existed read as messages.

    `event_id` is the platform's own id for the event and the dedupe key; `meta` carries what the
    adapter needs again to answer natively (a Slack thread ts, an e-mail's Message-ID and subject).
    `raw` keeps the original payload for debugging, as the adapter had it: the body's text where
    the adapter decoded only the fields it reads (Slack's events), the parsed object or form
    fields otherwise; it is never logged whole.
    """

    event_id: UserText
    conversation: ConversationRef
    sender: Sender
    text: UserText = ""
    attachments: tuple[Attachment, ...] = ()
    payload: UserText | None = None
    locale: UserText | None = None
    received_at: float = Field(default_factory=time.time)
    meta: dict[str, UserText] = Field(default_factory=dict)
    raw: SkipValidation[dict[str, Any] | str | None] = Field(default=None, repr=False)
    """Not validated: the platform's payload as the adapter had it, kept for debugging only."""
    kind: InboundKind = "message"
    message_id: UserText | None = None
    target_id: UserText | None = None

    @classmethod
    def build(
        cls,
        *,
        event_id: str,
        conversation: ConversationRef,
        sender: Sender,
        text: str,
        meta: dict[str, str],
        raw: dict[str, Any] | str | None,
        attachments: tuple[Attachment, ...] = (),
        message_id: str | None = None,
    ) -> Inbound:
        """`Inbound(...)` of these fields, for a webhook's hot path: when they are already what
        validation would accept and keep unchanged (ids and text as ASCII `str`, where no lone
        surrogate can be; the shared `ConversationRef` and `Sender`; `meta` of ASCII strings;
        `attachments` of `Attachment`s), the instance is put together as `model_construct`
        does it, without running pydantic-core's validator; anything else is validated as
        usual. `meta` becomes the event's own: pass a dict of your own making.

        Why: on the webhook's hot path the validator's large native code costs more than its own
        time, as it pushes the rest out of the CPU's caches (`bench/ingress.py` measures the
        difference). The tests hold the two ways to the same results."""
        if not _unchanged_by_validation(
            event_id, conversation, sender, text, meta, attachments
        ) or not (message_id is None or (type(message_id) is str and message_id.isascii())):
            fields: dict[str, Any] = {
                "event_id": event_id,
                "conversation": conversation,
                "sender": sender,
                "text": text,
                "meta": meta,
                "raw": raw,
            }
            if attachments:
                fields["attachments"] = attachments
            if message_id is not None:
                fields["message_id"] = message_id
            return cls.model_validate(fields)
        inbound = cls.__new__(cls)
        _set(
            inbound,
            "__dict__",
            {
                "event_id": event_id,
                "conversation": conversation,
                "sender": sender,
                "text": text,
                "attachments": attachments,
                "payload": None,
                "locale": None,
                "received_at": time.time(),
                "meta": meta,
                "raw": raw,
                "kind": "message",
                "message_id": message_id,
                "target_id": None,
            },
        )
        fields_set = set(_BUILT_WITH)
        if attachments:
            fields_set.add("attachments")
        if message_id is not None:
            fields_set.add("message_id")
        _set(inbound, "__pydantic_fields_set__", fields_set)
        _set(inbound, "__pydantic_extra__", None)
        _set(inbound, "__pydantic_private__", None)
        return inbound

    @property
    def channel(self) -> str:
        return self.conversation.channel

    @property
    def dedupe_key(self) -> str:
        return f"{self.conversation.channel}:{self.event_id}"

    def to_json(self) -> str:
        """The event as queued. `raw` is kept as the platform sent it, unvalidated; when it holds
        text JSON cannot carry (a lone surrogate escape) it is left out, rather than making the
        event impossible to queue (a 500 the platform would retry for ever)."""
        try:
            return self.model_dump_json()
        except PydanticSerializationError:
            return self.model_copy(update={"raw": None}).model_dump_json()


_BUILT_WITH = frozenset({"event_id", "conversation", "sender", "text", "meta", "raw"})
"""The fields `Inbound.build` sets (attachments too, when there are some)."""
_set = object.__setattr__


def _unchanged_by_validation(
    event_id: object,
    conversation: object,
    sender: object,
    text: object,
    meta: object,
    attachments: object,
) -> bool:
    """Whether `Inbound`'s validation would keep these as they are: exact types, and text that
    is ASCII (no lone surrogate to replace)."""
    if not (
        type(event_id) is str
        and event_id.isascii()
        and type(text) is str
        and text.isascii()
        and type(conversation) is ConversationRef
        and type(sender) is Sender
        and type(meta) is dict
        and type(attachments) is tuple
    ):
        return False
    for key, value in meta.items():
        if not (type(key) is str and type(value) is str and value.isascii()):
            return False
    return all(type(a) is Attachment for a in attachments) if attachments else True


class Outbound(Frozen):
    """One bot message; each adapter renders it natively within its channel's capabilities."""

    conversation: ConversationRef
    text: str = ""
    buttons: tuple[Button, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None
    meta: dict[str, str] = Field(default_factory=dict)

    @property
    def channel(self) -> str:
        return self.conversation.channel


ButtonStyle = Literal["native", "numbered"]


class Capabilities(Frozen):
    """What a channel can show; the core and renderers read this instead of asking per channel."""

    max_text: int = 4096
    buttons: ButtonStyle = "native"
    max_buttons: int = 10
    max_button_label: int = 64
    max_payload_bytes: int | None = None
    attachments: bool = False
    threads: bool = False
    per_chat_interval: float = 0.0
    """Least seconds between two messages to one chat (Telegram: about one a second)."""
    reply_window: float | None = None
    """Seconds after the customer's last message in which free text may be sent to them
    (WhatsApp: 24 hours; after that only an approved template); None: no such limit."""


def invalid_fields(exc: ValidationError) -> str:
    """Which fields failed and why, without the input: pydantic's own message quotes the input,
    which for a queued event is the user's message, and that must not reach a log line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['type']}"
        for e in exc.errors(include_input=False, include_url=False)
    )
