"""Slack (Events API + interactivity): the channel, its request signature, its typed events and
interactions, and Block Kit replies."""

from adapters.slack.channel import SlackChannel
from adapters.slack.signing import SlackSigner

__all__ = ["SlackChannel", "SlackSigner"]
