"""The channel registry: one line per channel. An adapter whose settings are missing is off,
and its webhook answers 404 saying which setting turns it on."""

from __future__ import annotations

from collections.abc import Callable

from adapters.slack import SlackChannel
from adapters.telegram import TelegramChannel
from adapters.webchat import WebChatChannel
from config.settings import Settings
from core.channel import Channel

ChannelFactory = Callable[[Settings], Channel | None]
"""Builds a channel from the settings, or None when the channel is not configured."""


def _slack(s: Settings) -> Channel | None:
    if s.slack_signing_secret is None or s.slack_bot_token is None:
        return None
    return SlackChannel(
        signing_secret=s.slack_signing_secret.get_secret_value(),
        bot_token=s.slack_bot_token.get_secret_value(),
        api_url=s.slack_api_url,
    )


def _telegram(s: Settings) -> Channel | None:
    if s.telegram_bot_token is None or s.telegram_secret_token is None:
        return None
    return TelegramChannel(
        bot_token=s.telegram_bot_token.get_secret_value(),
        secret_token=s.telegram_secret_token.get_secret_value(),
        api_url=s.telegram_api_url,
        bot_username=s.telegram_bot_username,
        edits_as_new=s.telegram_edits_as_new,
    )


FACTORIES: dict[str, ChannelFactory] = {
    "webchat": lambda _settings: WebChatChannel(),
    "slack": _slack,
    "telegram": _telegram,
}

NEEDS: dict[str, str] = {
    "slack": "SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN",
    "telegram": "TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN",
}
"""For a channel that is off: which settings turn it on (shown in the 404)."""


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, factory in FACTORIES.items():
        channel = factory(settings)
        if channel is not None:
            channels[name] = channel
    return channels
