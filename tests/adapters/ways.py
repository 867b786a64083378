"""The ways a channel's payloads reach the gateway, for the contract tests that must hold over
each: the webhook (every channel), Slack's Socket Mode, Telegram's long polling and an IMAP
mailbox (dovecot). A way takes the same unsigned `Request` a case builds for its webhook and
carries it as that way does: signed and posted, pushed in a Socket Mode envelope, handed out by
`getUpdates`, delivered into the mailbox."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from tests.adapters.contract import ChannelCase, FakePlatform, Gateway, Request
from tests.support.dovecot import PASSWORD, USER, Dovecot, running_dovecot
from tests.support.fakes.slack import FakeSlack
from tests.support.fakes.telegram import FakeTelegram


async def _until(check: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Link(Protocol):
    """One way in, open for a test (its own server started, when it needs one)."""

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        """Settings overrides, on top of the case's, turning this way on."""
        ...

    async def deliver(self, gw: Gateway, req: Request) -> None:
        """`req`'s payload carried this way; returns once the platform saw it taken (2xx, the
        envelope acknowledged, the offset moved past the update, the mail seen)."""
        ...

    async def deliver_malformed(self, gw: Gateway) -> None:
        """A payload this way can carry that the adapter must refuse; returns once taken."""
        ...


Opener = Callable[[ChannelCase, FakePlatform], AbstractAsyncContextManager[Link]]


@dataclass(frozen=True)
class Way:
    name: str
    channel: str
    open: Opener


def _needing(make: Callable[[ChannelCase, FakePlatform], Link]) -> Opener:
    """The opener of a way that needs no server of its own."""

    @asynccontextmanager
    async def opened(case: ChannelCase, fake: FakePlatform) -> AsyncIterator[Link]:
        yield make(case, fake)

    return opened


def _slack(fake: FakePlatform) -> FakeSlack:
    assert isinstance(fake, FakeSlack)
    return fake


def _telegram(fake: FakePlatform) -> FakeTelegram:
    assert isinstance(fake, FakeTelegram)
    return fake


# -- the webhook -------------------------------------------------------------------------------


@dataclass
class WebhookLink:
    case: ChannelCase

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        return {}

    async def deliver(self, gw: Gateway, req: Request) -> None:
        status, body = await gw.post(self.case, self.case.sign(req))
        assert 200 <= status < 300, (status, body)

    async def deliver_malformed(self, gw: Gateway) -> None:
        status, body = await gw.post(self.case, self.case.sign(self.case.malformed()))
        assert status == 400, (status, body)


# -- Slack's Socket Mode ---------------------------------------------------------------------


@dataclass
class SocketLink:
    fake: FakeSlack

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        return {
            "slack_mode": "socket",
            "slack_app_token": self.fake.app_token,
            "slack_socket_ping_interval": 0.2,
        }

    async def deliver(self, gw: Gateway, req: Request) -> None:
        await _until(lambda: self.fake.sockets, "a Socket Mode connection")
        if req.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            [payload] = parse_qs(req.body.decode())["payload"]
            envelope = await self.fake.push(json.loads(payload), "interactive")
        else:
            envelope = await self.fake.push(json.loads(req.body))
        await _until(lambda: self.fake.acked(envelope), f"the ack of {envelope}")

    async def deliver_malformed(self, gw: Gateway) -> None:
        """An events_api envelope whose payload has a field of the wrong type (an envelope
        that is not JSON at all has its own test in tests/gateway/ingress)."""
        await _until(lambda: self.fake.sockets, "a Socket Mode connection")
        event = {"type": "message", "channel": 5, "user": "U1", "ts": "1.2", "text": "hi"}
        envelope = await self.fake.push(
            {"type": "event_callback", "event_id": "EvBad", "event": event}
        )
        await _until(lambda: self.fake.acked(envelope), f"the ack of {envelope}")


# -- Telegram's long polling -----------------------------------------------------------------


@dataclass
class PollingLink:
    fake: FakeTelegram

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        return {"telegram_mode": "polling", "telegram_poll_timeout": 1}

    async def deliver(self, gw: Gateway, req: Request) -> None:
        await self._taken(json.loads(req.body))

    async def deliver_malformed(self, gw: Gateway) -> None:
        await self._taken({"message": {"chat": "not an object", "text": 5}})

    async def _taken(self, update: dict[str, Any]) -> None:
        """Handed out by a getUpdates and taken: the poller asked for more after it (for an
        update delivered again, the offset was past it already)."""
        fake = self.fake
        before = len(fake.delivered)
        update_id = fake.push(update)
        await _until(lambda: update_id in fake.delivered[before:], f"update {update_id} out")
        polls = fake.polls
        await _until(lambda: fake.polls > polls, "the next getUpdates")
        assert fake.confirmed > update_id


# -- an IMAP mailbox -------------------------------------------------------------------------


@dataclass
class ImapLink:
    case: ChannelCase
    dovecot: Dovecot
    taken: int = 0

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        return {
            "imap_host": self.dovecot.host,
            "imap_port": self.dovecot.port,
            "imap_username": USER,
            "imap_password": PASSWORD,
            "imap_tls": False,
            "imap_poll_interval": 1,
        }

    async def deliver(self, gw: Gateway, req: Request) -> None:
        await asyncio.to_thread(self.dovecot.deliver, req.body)
        self.taken += 1
        await _until(lambda: self.dovecot.count("SEEN") >= self.taken, "the mail seen", 30)

    async def deliver_malformed(self, gw: Gateway) -> None:
        """Left unseen and logged, never taken: the next delivery's being seen is the barrier."""
        await asyncio.to_thread(self.dovecot.deliver, self.case.malformed().body)


@asynccontextmanager
async def _imap(case: ChannelCase, fake: FakePlatform) -> AsyncIterator[Link]:
    with running_dovecot() as server:
        yield ImapLink(case, server)


WEBHOOK = "webhook"
WAYS_BEYOND_THE_WEBHOOK = {
    "slack": Way("socket", "slack", _needing(lambda _, fake: SocketLink(_slack(fake)))),
    "telegram": Way("polling", "telegram", _needing(lambda _, f: PollingLink(_telegram(f)))),
    "email": Way("imap", "email", _imap),
}
"""Each channel's way in without a public URL."""


def ways_of(case: ChannelCase) -> list[Way]:
    webhook = Way(WEBHOOK, case.name, _needing(lambda case, _: WebhookLink(case)))
    other = WAYS_BEYOND_THE_WEBHOOK.get(case.name)
    return [webhook, other] if other is not None else [webhook]
