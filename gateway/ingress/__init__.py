"""Ways in that need no public URL: each loop an async context manager (running from enter to
exit) that hands the platform's payloads to the same parse, dedupe and queue as the webhook.

`ingresses(services)` lists those the settings turn on; `gateway.build` runs them as parts of
`serve`, after the queue and the channels and before the engine."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from adapters.email import EmailChannel
from config.settings import Settings
from core.errors import StartupError
from core.keys import hidden
from core.redis.client import connect
from gateway.ingress.imap import ImapIngress
from gateway.ingress.intake import Intake
from gateway.ingress.lease import RedisLease
from gateway.ingress.slack_socket import SocketModeIngress
from gateway.ingress.telegram_polling import TelegramPollingIngress
from gateway.services import Services

Ingress = AbstractAsyncContextManager[object]

LEASE_TTL = 15.0
"""Seconds a poller's lease lasts unless renewed (every third of it): how long the others wait
to take over from a process that died."""


def ingresses(services: Services) -> list[Ingress]:
    """The ingress loops these settings ask for; `StartupError` names a missing setting."""
    s = services.settings
    out: list[Ingress] = []
    if s.telegram_mode == "polling":
        out.append(telegram_polling(services, s))
    if s.slack_mode == "socket":
        out.append(slack_socket(services, s))
    if s.imap_host:
        out.append(imap(services, s))
    return out


def _intake(services: Services, name: str, via: str) -> Intake:
    return Intake(services.channels[name], services.storage.queue, services.metrics, via)


def telegram_polling(services: Services, s: Settings) -> TelegramPollingIngress:
    if s.telegram_bot_token is None or "telegram" not in services.channels:
        raise StartupError("TELEGRAM_MODE=polling needs TELEGRAM_BOT_TOKEN")
    token = s.telegram_bot_token.get_secret_value()
    lease = None
    if s.redis_url is not None:
        # One poller per bot among all the processes sharing this Redis.
        key = f"{s.redis_prefix}:lease:telegram-poll:{hidden(token.split(':', 1)[0])}"
        lease = RedisLease(connect(s.redis_url.get_secret_value()), key, LEASE_TTL, owned=True)
    return TelegramPollingIngress(
        token=token,
        api_url=s.telegram_api_url,
        intake=_intake(services, "telegram", "polling"),
        lease=lease,
        poll_timeout=s.telegram_poll_timeout,
    )


def slack_socket(services: Services, s: Settings) -> SocketModeIngress:
    if s.slack_app_token is None:
        raise StartupError(
            "SLACK_MODE=socket needs SLACK_APP_TOKEN, an app-level token (xapp-...) with the "
            "connections:write scope"
        )
    if "slack" not in services.channels:
        raise StartupError("SLACK_MODE=socket needs SLACK_BOT_TOKEN (xoxb-...) to answer")
    return SocketModeIngress(
        app_token=s.slack_app_token.get_secret_value(),
        api_url=s.slack_api_url,
        intake=_intake(services, "slack", "socket"),
        enqueue_timeout=s.enqueue_timeout if services.storage.durable else None,
        ping_interval=s.slack_socket_ping_interval,
    )


def imap(services: Services, s: Settings) -> ImapIngress:
    channel = services.channels.get("email")
    if not isinstance(channel, EmailChannel):
        raise StartupError("IMAP_HOST needs SMTP_HOST and EMAIL_FROM too, to answer the mail")
    if not s.imap_username or s.imap_password is None:
        raise StartupError("IMAP_HOST needs IMAP_USERNAME and IMAP_PASSWORD")
    assert s.imap_host is not None
    return ImapIngress(
        channel=channel,
        intake=_intake(services, "email", "imap"),
        host=s.imap_host,
        port=s.imap_port or (993 if s.imap_tls else 143),
        username=s.imap_username,
        password=s.imap_password.get_secret_value(),
        folder=s.imap_folder,
        move_to=s.imap_move_to or None,
        tls=s.imap_tls,
        poll_interval=s.imap_poll_interval,
    )
