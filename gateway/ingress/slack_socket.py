"""Slack without a public URL (SLACK_MODE=socket): Socket Mode through slack_sdk's aiohttp
client. Each envelope's payload is the body the webhook would have had (an Events API request,
an interaction), read by the adapter's own parse and put into the same queue with the same
dedupe; the envelope is acknowledged as soon as that is done, as the webhook answers 200.

slack_sdk speaks the protocol (`apps.connections.open` with the app-level token, the WebSocket,
pings) and answers Slack's `disconnect` by opening a new connection before the old closes;
`socket_link.LinkKeeper` makes every other connection, with a growing back-off. Several `serve`
processes each hold a connection; Slack spreads envelopes over them, and sends one again to
another when it was not acknowledged: the queue's dedupe keeps one reply per event."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import orjson
import structlog
from aiohttp import WSMessage, WSMsgType
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from core.channel import PayloadError
from core.errors import QueueUnavailable
from core.tasks import cancel_and_wait
from gateway.ingress.intake import Intake, platform_request
from gateway.ingress.socket_link import LinkKeeper

log = structlog.get_logger(__name__)

FORM = "application/x-www-form-urlencoded"
_ENVELOPE_ID = re.compile(r'"envelope_id"\s*:\s*"([0-9A-Za-z-]{1,64})"')


def _not_json_failure(record: logging.LogRecord) -> bool:
    """slack_sdk logs a frame that is not JSON with a traceback; `_on_text` says it in one line."""
    return not (record.exc_info and isinstance(record.exc_info[1], json.JSONDecodeError))


class SocketModeIngress:
    """`async with SocketModeIngress(...)`: connected from enter to exit (the first connection
    is made in the background, so a Slack that is unreachable at start-up does not stop the
    gateway: the keeper goes on trying, less and less often)."""

    def __init__(
        self,
        *,
        app_token: str,
        api_url: str,
        intake: Intake,
        enqueue_timeout: float | None = None,
        ping_interval: float = 10.0,
    ) -> None:
        self._intake = intake
        self._within = enqueue_timeout
        sdk_log = logging.getLogger("gateway.slack_socket_mode")
        sdk_log.addFilter(_not_json_failure)
        self.client = SocketModeClient(
            app_token=app_token,
            web_client=AsyncWebClient(base_url=api_url),
            logger=sdk_log,
            # Its own reconnecting retries at a fixed pace for ever: the keeper does it instead.
            auto_reconnect_enabled=False,
            ping_interval=ping_interval,
        )
        self.client.message_listeners.append(self._on_message)
        self.client.on_message_listeners.append(self._on_text)
        self.client.on_close_listeners.append(self._on_gone)
        self.client.on_error_listeners.append(self._on_gone)
        self._stopping = asyncio.Event()
        self.keeper = LinkKeeper(self.client, self._stopping, check_every=ping_interval)
        self._keeping: asyncio.Task[None] | None = None
        self.hellos = 0
        """`hello`s received: one per connection made."""

    async def __aenter__(self) -> SocketModeIngress:
        self._keeping = asyncio.create_task(self.keeper.run(), name="slack-socket-link")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        await cancel_and_wait(self._keeping)
        await self.client.close()
        log.info("slack.socket_closed")

    async def _on_gone(self, message: WSMessage) -> None:
        self.keeper.lost()

    async def _on_text(self, message: WSMessage) -> None:
        """Every text frame, before slack_sdk reads it: one that is not JSON never reaches
        `_on_message`, so it is logged (and acknowledged, when its id can be seen) here; nor
        does a `disconnect` (slack_sdk answers it itself), logged here too."""
        if message.type != WSMsgType.TEXT:
            return
        try:
            frame = json.loads(message.data)
        except ValueError:
            found = _ENVELOPE_ID.search(message.data)
            log.warning("slack.socket_unreadable", reason="not JSON", acked=found is not None)
            if found:
                await self._ack(found.group(1))
            return
        if isinstance(frame, dict) and frame.get("type") == "disconnect":
            log.info("slack.socket_disconnect", reason=frame.get("reason"))

    async def _on_message(
        self, client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        kind = message.get("type")
        envelope_id = message.get("envelope_id")
        if kind == "hello":
            self.hellos += 1
            self.keeper.hello()
            info = message.get("connection_info")
            log.info(
                "slack.socket_connected",
                connections=message.get("num_connections"),
                app_id=info.get("app_id") if isinstance(info, dict) else None,
            )
            return
        if not message:
            return  # not JSON: logged by `_on_text`
        if not isinstance(envelope_id, str) or not envelope_id:
            log.warning("slack.socket_unreadable", reason="no envelope_id", kind=str(kind))
            return
        with structlog.contextvars.bound_contextvars(channel="slack", via="socket"):
            if await self._take(str(kind), message.get("payload"), message):
                await self._ack(envelope_id)

    async def _take(self, kind: str, payload: Any, message: dict[str, Any]) -> bool:
        """True when the envelope may be acknowledged: queued, a duplicate, or refused for good
        (unknown kind, malformed). False when the queue could not take it: left unacknowledged,
        Slack sends it again."""
        if kind == "events_api" and isinstance(payload, dict):
            req = platform_request(orjson.dumps(payload))
        elif kind == "interactive" and isinstance(payload, dict):
            form = urlencode({"payload": json.dumps(payload)}).encode()
            req = platform_request(form, FORM)
        else:
            self._reject("unknown_type")
            log.warning("slack.socket_ignored", kind=kind, reason="envelope type not handled")
            return True
        try:
            async with asyncio.timeout(self._within):
                taken = await self._intake.take(req)
        except PayloadError as exc:
            self._reject("malformed")
            log.warning("slack.socket_refused", kind=kind, reason=str(exc))
            return True
        except (QueueUnavailable, TimeoutError) as exc:
            self._intake.metrics.errors.labels(stage="enqueue").inc()
            log.error(
                "slack.socket_enqueue_failed",
                error=str(exc) or "timeout",
                retry_attempt=message.get("retry_attempt"),
            )
            return False
        if taken.queued or taken.duplicates:
            log.debug("slack.socket_queued", queued=taken.queued, duplicates=taken.duplicates)
        return True

    def _reject(self, reason: str) -> None:
        self._intake.metrics.rejected.labels(channel="slack", reason=reason).inc()

    async def _ack(self, envelope_id: str) -> None:
        try:
            await self.client.send_socket_mode_response({"envelope_id": envelope_id})
        except (ConnectionError, RuntimeError) as exc:  # the connection went; Slack resends
            log.warning("slack.socket_ack_failed", error=type(exc).__name__)
