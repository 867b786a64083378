"""Channels pointed at the fake Slack and Telegram servers."""

from tests.support.fakes_slack_telegram import slack_channel, telegram_channel

__all__ = ["slack_channel", "telegram_channel"]
