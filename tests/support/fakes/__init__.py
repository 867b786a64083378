"""One fake per remote platform, all here: each serves the part of the platform's HTTP API
the gateway calls, on a free loopback port, records what it was sent (`sent()`, normalised for
the adapter contract) and can be told to fail the next calls the way the platform does.

    slack.py      Slack Web API and Socket Mode          fixture `fake_slack`
    telegram.py   Telegram Bot API and long polling      fixture `fake_telegram`
    twilio.py     Twilio Messages (WhatsApp) and media   fixture `fake_twilio`
    smtp.py       an SMTP server that keeps the mail     fixture `smtp_sink`
    helpdesk.py   where HANDOFF_WEBHOOK_URL posts        fixture `helpdesk`
    model_hub.py  the model hub's download API           `serve_hub`
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web


@dataclass(frozen=True)
class Sent:
    """One message a fake platform received, normalised for the contract's checks. `buttons`
    are (label, data as sent to the platform) pairs."""

    chat_id: str
    text: str
    buttons: tuple[tuple[str, str], ...] = ()
    thread_id: str | None = None


class FakePlatform(Protocol):
    """A fake platform API on 127.0.0.1 started by the case."""

    def sent(self) -> list[Sent]: ...


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """`app` on a free loopback port for the block; yields its base URL (`http://127.0.0.1:N`)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
