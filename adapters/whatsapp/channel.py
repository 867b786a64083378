"""The WhatsApp channel through Twilio: signed form webhooks in, the REST API out (async
client only), buttons as numbered options, long text split at 1600 characters."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from contextvars import ContextVar
from functools import partial
from typing import Any, ClassVar

import aiohttp
import structlog
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from adapters.whatsapp import inbound as wire
from core.channel import (
    BaseChannel,
    Claim,
    SentMessage,
    Step,
    WebhookReply,
    WebhookRequest,
    send_steps,
)
from core.errors import (
    ChannelSendError,
    ChannelUnreachable,
    RetryAfter,
    SendRefused,
    VerificationError,
)
from core.models import Attachment, Capabilities, Inbound, Outbound
from core.render import numbered_options, split_text, with_options

log = structlog.get_logger(__name__)

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
_NO_ENV = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}
"""Given to the Twilio client so TWILIO_EDGE/TWILIO_REGION in the environment cannot rewrite
the configured API host."""

_http_log = logging.getLogger(__name__ + ".http")
_http_log.setLevel(logging.WARNING)  # the library logs every request at INFO, with its URL

REPLAY_MEMORY = 7 * 86400.0
"""Seconds a webhook's signature is remembered. Twilio signs no timestamp, so a captured request
stays valid for ever and only memory refuses it again: a week, longer than the dedupe window,
for a key per message."""

_retry_after: ContextVar[list[float] | None] = ContextVar("twilio_retry_after", default=None)
"""Where the send running in this task notes Twilio's `Retry-After` (see `_note_retry_after`)."""


class WhatsAppChannel(BaseChannel):
    name: ClassVar[str] = "whatsapp"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=1600,
        buttons="numbered",
        max_buttons=10,
        max_button_label=200,
        attachments=True,
        threads=False,
        reply_window=24 * 3600.0,  # WhatsApp's customer-service window
    )

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_url: str = "https://api.twilio.com",
        messaging_url: str = "https://messaging.twilio.com",
        typing: bool = True,
        timeout: float = 10.0,
        max_media_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._sid = account_sid
        self._token = auth_token
        self._from = wire.PREFIX + wire.address(from_number)
        self._api_url = api_url.rstrip("/")
        self._messaging_url = messaging_url.rstrip("/")
        self._typing = typing
        self._timeout = timeout
        self._max_media = max_media_bytes
        self._validator = RequestValidator(auth_token)
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None
        self._media: aiohttp.ClientSession | None = None

    # -- inbound ---------------------------------------------------------------------------

    def precheck(self, req: WebhookRequest) -> None:
        # The signature covers the body, so only its presence can be checked before it.
        if not req.header("x-twilio-signature"):
            raise VerificationError("X-Twilio-Signature header missing")

    def verify(self, req: WebhookRequest) -> None:
        signature = req.header("x-twilio-signature")
        if not signature:
            raise VerificationError("X-Twilio-Signature header missing")
        try:
            params = wire.form(req.body)
        except Exception:  # noqa: BLE001 - an unreadable body cannot be verified
            raise VerificationError("body is not a form; cannot check the signature") from None
        if not self._validator.validate(req.url, params, signature):
            raise VerificationError(f"X-Twilio-Signature does not match {req.url}")

    def parse(self, req: WebhookRequest) -> WebhookReply:
        params = wire.form(req.body)
        if "MessageStatus" in params:
            note = wire.status_note(params)
            if params.get("ErrorCode") == wire.OUTSIDE_WINDOW:
                log.error("whatsapp.outside_24h_window", message_sid=params.get("MessageSid"))
            return self._twiml(note=note)
        event = wire.message(params, self.name)
        if event is None:
            return self._twiml(note=f"nothing to read in {params.get('MessageType') or 'message'}")
        reply = self._twiml(events=(event,))
        reply.claims = (_signature_claim(req.header("x-twilio-signature"), params),)
        return reply

    @staticmethod
    def _twiml(events: tuple[Any, ...] = (), note: str | None = None) -> WebhookReply:
        """Twilio wants an answer inside 15 s; an empty TwiML says "no reply here", the reply
        goes out later through the REST API."""
        return WebhookReply(events=events, body=EMPTY_TWIML, content_type="text/xml", note=note)

    # -- outbound --------------------------------------------------------------------------

    async def start(self) -> None:
        self._ensure_client()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._media is not None:
            await self._media.close()
        self._http = self._client = self._media = None

    def _ensure_client(self) -> Client:
        """The library's client with its async HTTP client, pointed at `api_url`: the REST
        domain's `base_url` is the library's one place for the host (tests use a local fake)."""
        if self._client is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_end.append(_note_retry_after)
            self._http = AsyncTwilioHttpClient(
                timeout=self._timeout, logger=_http_log, trace_configs=[trace]
            )
            client = Client(self._sid, self._token, http_client=self._http, environment=_NO_ENV)
            client.api.base_url = self._api_url
            client.messaging.base_url = self._messaging_url
            self._client = client
        return self._client

    async def before_turn(self, inbound: Inbound) -> None:
        """WhatsApp shows "typing…" under the customer's message (and marks it read) until the
        reply is delivered, or for 25 s: Twilio's typing indicator names the message answered,
        by its SID (the event id)."""
        if not self._typing or inbound.kind != "message" or not wire.is_sid(inbound.event_id):
            return
        client = self._ensure_client()
        try:
            await client.messaging.v2.typing_indicator.create_async(
                channel="whatsapp", message_id=inbound.event_id
            )
        except (TwilioException, TimeoutError, aiohttp.ClientError) as exc:
            log.info("whatsapp.typing_failed", error=str(exc)[:200])  # a courtesy only

    async def send(self, msg: Outbound) -> SentMessage:
        to = wire.PREFIX + msg.conversation.chat_id
        content_sid = msg.meta.get("content_sid")
        if content_sid:
            variables = msg.meta.get("content_variables")
            return await self._create(to, content_sid=content_sid, content_variables=variables)
        text = with_options(msg.text, numbered_options(msg.buttons))
        parts = split_text(text, self.capabilities.max_text)
        media = [a.url for a in msg.attachments if a.url]
        if not parts and not media:
            return SentMessage()
        steps: list[Step] = [
            partial(
                self._create, to, body=part or None, media_url=media if i == 0 and media else None
            )
            for i, part in enumerate(parts or [""])
        ]
        return await send_steps(msg, steps)

    async def _create(self, to: str, **fields: Any) -> SentMessage:
        client = self._ensure_client()
        fields = {k: v for k, v in fields.items() if v is not None}
        waits: list[float] = []
        noting = _retry_after.set(waits)
        try:
            created = await client.api.v2010.account.messages.create_async(
                to=to, from_=self._from, **fields
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _send_error(exc, waits[-1] if waits else None) from None
        except TwilioException as exc:
            raise ChannelUnreachable(f"twilio: {exc}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ChannelUnreachable(f"twilio unreachable: {exc!r}") from None
        finally:
            _retry_after.reset(noting)
        return SentMessage(platform_id=created.sid, extra={"status": str(created.status or "")})

    async def fetch_media(self, attachment: Attachment) -> bytes:
        """An inbound media file's bytes: Twilio serves them behind the account's credentials
        (and redirects to storage). Refused over `max_media_bytes`."""
        if not attachment.url:
            raise ValueError("attachment has no url")
        if self._media is None:
            self._media = aiohttp.ClientSession(
                headers={"Authorization": aiohttp.encode_basic_auth(self._sid, self._token)},
                timeout=aiohttp.ClientTimeout(total=self._timeout * 3),
            )
        async with self._media.get(attachment.url) as resp:
            resp.raise_for_status()
            data = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                data += chunk
                if len(data) > self._max_media:
                    raise ValueError(f"media over {self._max_media} bytes")
            return bytes(data)


def _signature_claim(signature: str, params: dict[str, str]) -> Claim:
    """A signature is good for one form only. Twilio's joins names and values without
    separators, so a value moved into a neighbouring name (`MessageType` into `MessageSid`)
    keeps it valid for another form: remembered with the form it came with, the signature
    lets the platform retry that form and refuses every other."""
    form = json.dumps(sorted(params.items()), ensure_ascii=False)
    digest = hashlib.sha256(form.encode("utf-8", "surrogatepass")).hexdigest()
    return Claim(f"whatsapp:{signature}", digest, REPLAY_MEMORY)


async def _note_retry_after(
    _: aiohttp.ClientSession, __: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    """Twilio's 429 says in `Retry-After` when to come back, but the library's exception does
    not carry the headers: noted here, in the calling send's context variable (each send runs
    in its own task, so concurrent sends see their own)."""
    waits = _retry_after.get()
    if waits is None or params.response.status != 429:
        return
    try:
        after = float(params.response.headers.get("Retry-After", ""))
    except ValueError:
        return
    if math.isfinite(after) and after >= 0:
        waits.append(after)


def _send_error(
    exc: TwilioRestException | TwilioServiceException, retry_after: float | None = None
) -> ChannelSendError:
    code = str(exc.code or "")
    status = int(exc.status or 0)
    if code == wire.OUTSIDE_WINDOW:
        log.error(
            "whatsapp.outside_24h_window",
            hint="free-form replies are refused 24 h after the user's last message;"
            " configure a ContentSid template for this reply",
        )
        return SendRefused(
            "twilio 63016: outside the WhatsApp 24-hour window (not retried; use a template)"
        )
    detail = getattr(exc, "msg", None) or getattr(exc, "title", None) or ""
    message = f"twilio {status} error {code}: {detail}"
    if status == 429 and retry_after is not None:
        return RetryAfter(retry_after, message)
    if status == 429 or status >= 500:
        return ChannelUnreachable(message)
    return SendRefused(message)
