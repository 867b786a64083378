"""The Slack channel (Events API + interactivity): requests checked and parsed, replies sent
through `chat.postMessage` with Block Kit buttons."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import signing
from adapters.slack.blocks import blocks_for, escape
from adapters.slack.events import parse_events
from adapters.slack.interactions import parse_interaction
from adapters.slack.status import ThreadStatus
from core.channel import BaseChannel, SentMessage, Step, WebhookReply, WebhookRequest, send_steps
from core.errors import ChannelSendError, ChannelUnreachable, RetryAfter, SendRefused
from core.models import Capabilities, ConversationRef, Inbound, Outbound
from core.render import PayloadKeys, fit_buttons, split_text, with_options

_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackChannel(BaseChannel):
    name: ClassVar[str] = "slack"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=3000,  # a section block's text; a message's whole text may be longer
        buttons="native",
        max_buttons=25,  # elements of one actions block
        max_button_label=75,
        max_payload_bytes=2000,  # a button's value
        attachments=True,  # images by URL as image blocks, other files as links
        threads=True,
    )

    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str,
        api_url: str,
        typing_status: str = "is typing…",
        clock: Callable[[], float] = time.time,
    ):
        self._clock = clock
        self._signer = signing.SlackSigner(signing_secret)
        self._token = bot_token
        self._api_url = api_url
        self._session: aiohttp.ClientSession | None = None
        self._client = AsyncWebClient(token=bot_token, base_url=api_url)
        self._keys = PayloadKeys()
        self._status = ThreadStatus(typing_status)

    async def start(self) -> None:
        """One pooled HTTP session for all sends instead of one per call."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self._client = AsyncWebClient(
            token=self._token, base_url=self._api_url, session=self._session
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- inbound ---------------------------------------------------------------------------

    def precheck(self, req: WebhookRequest) -> None:
        signing.check_headers(req, self._clock())

    def verify(self, req: WebhookRequest) -> None:
        signing.verify(self._signer, req, self._clock())

    def parse(self, req: WebhookRequest) -> WebhookReply:
        if req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return parse_interaction(req.body, self.name, self._keys)
        return parse_events(req.body, self.name)

    # -- outbound --------------------------------------------------------------------------

    async def before_turn(self, inbound: Inbound) -> None:
        await self._status.show(self._client, inbound)

    async def send(self, msg: Outbound) -> SentMessage:
        try:
            return await self._send(msg)
        finally:
            await self._status.clear(self._client, msg.conversation)

    async def _send(self, msg: Outbound) -> SentMessage:
        if not msg.text.strip() and not msg.buttons and not msg.attachments:
            return SentMessage()
        caps = self.capabilities
        native, overflow = fit_buttons(msg.buttons, caps)
        keyed = [(b, self._keys.encode(b.payload, caps.max_payload_bytes or 2000)) for b in native]
        parts = split_text(escape(with_options(msg.text, overflow)), caps.max_text) or [""]
        steps: list[Step] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            blocks = blocks_for(part, keyed if last else [], msg.attachments if last else ())
            fallback = part or " ".join(b.label for b in native) or "(attachment)"
            steps.append(partial(self._post, msg.conversation, fallback, blocks))
        return await send_steps(msg, steps)

    async def _post(
        self, conv: ConversationRef, text: str, blocks: list[dict[str, Any]]
    ) -> SentMessage:
        try:
            resp = await self._client.chat_postMessage(
                channel=conv.chat_id, text=text, blocks=blocks, thread_ts=conv.thread_id
            )
        except SlackApiError as exc:
            raise _send_error(exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ChannelUnreachable(f"slack unreachable: {exc!r}") from None
        ts = resp.get("ts")
        return SentMessage(platform_id=ts if isinstance(ts, str) else None)


def _send_error(exc: SlackApiError) -> ChannelSendError:
    status = exc.response.status_code
    error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
    if status == 429:
        after = _header(exc.response.headers, "retry-after")
        try:
            wait = float(after) if after else 1.0
        except ValueError:
            wait = 1.0
        return RetryAfter(wait, "slack rate limit (429)")
    detail = f"slack chat.postMessage: {error or status}"
    if status >= 500 or error in _TRANSIENT_ERRORS:
        return ChannelUnreachable(detail)
    return SendRefused(detail)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None
