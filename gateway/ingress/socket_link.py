"""Keeping the Socket Mode connection up, with a growing back-off between attempts.

slack_sdk's client opens a connection, answers Slack's `disconnect` by opening a new one at once
(as Slack asks: the old one closes a few seconds later), and notices a connection whose pings go
unanswered. What it lacks is a back-off: a failed attempt is tried again every ping interval for
ever, and `connect()` keeps dialling the same one-time WebSocket URL when that fails. So its own
reconnecting is turned off and `LinkKeeper` makes every connection but the `disconnect` ones:
the first, and each after a loss or a failed attempt, waiting 0.5 s, 1 s, 2 s... up to a
ceiling between failures (reset by Slack's `hello`)."""

from __future__ import annotations

import asyncio

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient

from gateway.ingress.backoff import Backoff

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 15.0
"""Seconds one attempt (a URL from `apps.connections.open`, then the WebSocket) may take."""


class LinkKeeper:
    """`await run()` until `stopping` is set: connected whenever it can be. `lost()` says the
    connection may have gone (checked at once rather than at the next look); `hello()` that
    Slack greeted a new connection, which resets the back-off."""

    def __init__(
        self,
        client: SocketModeClient,
        stopping: asyncio.Event,
        *,
        check_every: float,
        ceiling: float = 30.0,
    ) -> None:
        self._client = client
        self._stopping = stopping
        self._check_every = check_every
        self._backoff = Backoff(stopping, ceiling=ceiling)
        self._lost = asyncio.Event()
        self.attempts = 0
        """Connections tried by the keeper (not counting those slack_sdk makes on `disconnect`)."""

    def lost(self) -> None:
        self._lost.set()

    def hello(self) -> None:
        self._backoff.reset()

    async def run(self) -> None:
        failing: str | None = None
        first = True
        while not self._stopping.is_set():
            if not first:
                if failing is None:  # after a failed try, straight to the back-off
                    await self._until_lost()
                    if self._stopping.is_set() or await self._client.is_connected():
                        continue
                if not await self._backoff.wait():
                    return
            first = False
            try:
                made = await self._connect()
            except SlackApiError as exc:
                error = str(exc.response.get("error") or exc.response.status_code)
                if failing != error:
                    log.warning("slack.socket_refused", error=error, hint=_hint(error))
                failing = error
                continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if failing != "network":
                    log.warning("slack.socket_unreachable", error=type(exc).__name__)
                failing = "network"
                continue
            if made and failing is not None:
                log.info("slack.socket_reconnected", attempts=self.attempts)
            failing = None

    async def _until_lost(self) -> None:
        """A `lost()`, the next look (every `check_every` s: a connection dropped without a word
        is only seen by its pings), or the stop."""
        waiters = [
            asyncio.ensure_future(self._lost.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=self._check_every, return_when="FIRST_COMPLETED")
        finally:
            for w in waiters:
                w.cancel()
        self._lost.clear()

    async def _connect(self) -> bool:
        """One attempt, under the client's own lock so that it never races slack_sdk's answer
        to a `disconnect`; False when that had made a connection meanwhile."""
        client = self._client
        async with client.connect_operation_lock:
            if await client.is_connected():
                return False
            self.attempts += 1
            async with asyncio.timeout(CONNECT_TIMEOUT):
                client.wss_uri = await client.issue_new_wss_url()
                await client.connect()
        return True


def _hint(error: str) -> str | None:
    if error in ("invalid_auth", "not_authed", "not_allowed_token_type"):
        return "check SLACK_APP_TOKEN (an app-level xapp- token with connections:write)"
    return None
