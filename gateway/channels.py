"""The channel registry: one line per channel. An adapter whose settings are missing is off,
and its webhook answers 404 saying which setting turns it on."""

from __future__ import annotations

from collections.abc import Callable

from adapters.webchat import WebChatChannel
from config.settings import Settings
from core.channel import Channel

ChannelFactory = Callable[[Settings], Channel | None]
"""Builds a channel from the settings, or None when the channel is not configured."""

FACTORIES: dict[str, ChannelFactory] = {
    "webchat": lambda _settings: WebChatChannel(),
}

NEEDS: dict[str, str] = {}
"""For a channel that is off: which settings turn it on (shown in the 404)."""


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, factory in FACTORIES.items():
        channel = factory(settings)
        if channel is not None:
            channels[name] = channel
    return channels
