"""The contract between the core and a channel adapter, and the errors an adapter may raise."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.errors import ChannelSendError, PayloadError
from core.models import Inbound, Outbound, without_lone_surrogates


class WebhookRequest:
    """A framework-neutral HTTP request: what `gateway/` hands an adapter.

    `url` is the full public URL (Twilio signs it); `header()` looks names up in lower case
    (the gateway hands over its case-insensitive headers as they are). `url`, `query` and
    `remote` are properties so that the gateway can work them out only when an adapter reads
    them: Slack's and Telegram's checks read headers and body alone.
    """

    __slots__ = ("_query", "_remote", "_url", "body", "headers", "method")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        body: bytes,
        remote: str | None = None,
    ) -> None:
        self.method = method
        self.headers = headers
        self.body = body
        self._url = url
        self._query = query
        self._remote = remote

    @property
    def url(self) -> str:
        return self._url

    @property
    def query(self) -> Mapping[str, str]:
        return self._query

    @property
    def remote(self) -> str | None:
        return self._remote

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class Claim:
    """A one-time credential a webhook spends (Mailgun's token, Twilio's signature), declared
    by `parse` and checked by the gateway in a store every process shares. For `ttl` seconds
    (None: the dedupe window) `key` may come again only with the same `value` and only while the
    queue's dedupe remembers the event (the platform retrying the same delivery); anything else
    is a replay, refused 401."""

    key: str
    value: str
    ttl: float | None = None


@dataclass(slots=True)
class WebhookReply:
    """What an adapter's `parse` found, and how to answer the platform right away. (Not frozen:
    one is built per webhook, and a frozen dataclass sets each field through `object`.)"""

    events: Sequence[Inbound] = ()
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    note: str | None = None
    """Why nothing was queued (ignored subtype, status callback...), for the log line."""
    claims: tuple[Claim, ...] = ()
    """One-time credentials this request spends; the gateway refuses it when one was spent on
    another request (see `Claim`)."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    """The platform's id of a sent message, when it gives one."""

    platform_id: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


def json_object(body: bytes) -> dict[str, Any]:
    """A webhook body that must be a JSON object, or `PayloadError`. orjson first (the webhook
    hot path); what it refuses is read again by the standard library, which accepts a little
    more (lone surrogate escapes), so no body is refused for the parser's sake. (Integers past
    64 bits come back as floats; no platform sends them.)"""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = _lenient_json(body)
    if not isinstance(data, dict):
        raise PayloadError("body is not a JSON object")
    return data


def strict_json(body: bytes) -> bytes:
    """A body that a strict JSON parser (msgspec) refused, written again for it: JSON may carry
    lone surrogate escapes ("\\ud800": valid JSON, not valid Unicode), and here each becomes
    U+FFFD, as the models make of them, so such a body is read, not refused. `PayloadError`
    when the standard library cannot read the body either."""
    text = json.dumps(_lenient_json(body), ensure_ascii=False)
    return without_lone_surrogates(text).encode("utf-8")


def _lenient_json(body: bytes) -> Any:
    """The standard library's reading of a body, or `PayloadError`."""
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deep
        raise PayloadError("body is not UTF-8 JSON") from None


STEPS_DONE = "steps_done"
"""`Outbound.meta` key the outbox sets on a retry: the steps an earlier try delivered."""

Step = Callable[[], Awaitable[SentMessage | None]]


async def send_steps(msg: Outbound, steps: Sequence[Step]) -> SentMessage:
    """Run the platform calls of one message (its parts, attachments) in order, skipping those an
    earlier try delivered. Without this, a 429 on part 2 of a long reply makes the retry send
    part 1 again: the user reads it twice."""
    done = int(msg.meta.get(STEPS_DONE, "0"))
    sent = SentMessage()
    for i in range(done, len(steps)):
        try:
            out = await steps[i]()
        except ChannelSendError as exc:
            exc.steps_done = i
            raise
        if out is not None:
            sent = out
    return sent


class BaseChannel:
    """Defaults for the optional parts of `Channel`; adapters may inherit it or not."""

    def precheck(self, req: WebhookRequest) -> None:
        return None

    async def before_turn(self, inbound: Inbound) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
