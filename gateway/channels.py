"""The channel registry: one line per channel. An adapter whose settings are missing is off,
and its webhook answers 404 saying which setting turns it on."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from adapters.email import EmailChannel, SmtpServer
from adapters.slack import SlackChannel
from adapters.telegram import TelegramChannel
from adapters.webchat import WebChatChannel
from adapters.whatsapp import WhatsAppChannel
from config.settings import Settings
from core.ports import Channel
from core.redis.client import connect
from core.redis.ledger import RedisReplyLedger
from gateway.storage import build_relay

ChannelFactory = Callable[[Settings], Channel | None]
"""Builds a channel from the settings, or None when the channel is not configured."""


def _unused_secret() -> str:
    """The webhook's secret when events come another way (Socket Mode, polling) and none is
    set: random, so the webhook refuses every request instead of trusting any."""
    return secrets.token_urlsafe(32)


def _slack(s: Settings) -> Channel | None:
    if s.slack_bot_token is None:
        return None
    if s.slack_signing_secret is None and s.slack_mode != "socket":
        return None
    return SlackChannel(
        signing_secret=s.slack_signing_secret.get_secret_value()
        if s.slack_signing_secret is not None
        else _unused_secret(),
        bot_token=s.slack_bot_token.get_secret_value(),
        api_url=s.slack_api_url,
        typing_status=s.slack_typing_status,
    )


def _telegram(s: Settings) -> Channel | None:
    if s.telegram_bot_token is None:
        return None
    if s.telegram_secret_token is None and s.telegram_mode != "polling":
        return None
    # python-telegram-bot 22 is moving time periods (RetryAfter.retry_after) from int seconds to
    # timedelta and warns on every int access, even inside its own constructor: opt into the new
    # form (the adapter reads either).
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    return TelegramChannel(
        bot_token=s.telegram_bot_token.get_secret_value(),
        secret_token=s.telegram_secret_token.get_secret_value()
        if s.telegram_secret_token is not None
        else _unused_secret(),
        api_url=s.telegram_api_url,
        bot_username=s.telegram_bot_username,
        edits_as_new=s.telegram_edits_as_new,
    )


def _whatsapp(s: Settings) -> Channel | None:
    if not (s.twilio_account_sid and s.twilio_auth_token and s.twilio_whatsapp_from):
        return None
    return WhatsAppChannel(
        account_sid=s.twilio_account_sid,
        auth_token=s.twilio_auth_token.get_secret_value(),
        from_number=s.twilio_whatsapp_from,
        api_url=s.twilio_api_url,
        messaging_url=s.twilio_messaging_url,
        typing=s.whatsapp_typing,
    )


def _email(s: Settings) -> Channel | None:
    """On when it can answer (SMTP_HOST, EMAIL_FROM); the webhook also needs
    MAILGUN_SIGNING_KEY (401 without), the SMTP listener SMTP_LISTEN_PORT."""
    if not (s.smtp_host and s.email_from):
        return None
    password = s.smtp_password.get_secret_value() if s.smtp_password else None
    key = s.mailgun_signing_key.get_secret_value() if s.mailgun_signing_key else None
    return EmailChannel(
        sender=s.email_from,
        smtp=SmtpServer(
            host=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=password,
            starttls=s.smtp_starttls,
        ),
        signing_key=key,
        autoreply_period=s.email_autoreply_period,
        max_attachment_bytes=s.email_max_attachment_bytes,
        # Several workers: who was answered must be known to all of them (RFC 3834 limits).
        ledger=RedisReplyLedger(connect(s.redis_url.get_secret_value()), prefix=s.redis_prefix)
        if s.redis_url is not None
        else None,
    )


FACTORIES: dict[str, ChannelFactory] = {
    "webchat": lambda s: WebChatChannel(relay=build_relay(s)),
    "slack": _slack,
    "telegram": _telegram,
    "whatsapp": _whatsapp,
    "email": _email,
}

NEEDS: dict[str, str] = {
    "slack": "SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or SLACK_MODE=socket with SLACK_APP_TOKEN)",
    "telegram": "TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN (or TELEGRAM_MODE=polling)",
    "whatsapp": "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM",
    "email": "SMTP_HOST and EMAIL_FROM (and MAILGUN_SIGNING_KEY for the webhook)",
}
"""For a channel that is off: which settings turn it on (shown in the 404)."""


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, factory in FACTORIES.items():
        channel = factory(settings)
        if channel is not None:
            channels[name] = channel
    return channels
