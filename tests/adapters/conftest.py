"""Channels built from the settings (as the gateway builds them) pointed at the fake Slack and
Telegram servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack import SlackChannel
from adapters.telegram import TelegramChannel
from tests.adapters.cases.slack import CASE as SLACK
from tests.adapters.cases.telegram import CASE as TELEGRAM
from tests.adapters.contract import build_channel
from tests.support.fakes.slack import FakeSlack
from tests.support.fakes.telegram import FakeTelegram


@pytest.fixture
async def slack_channel(fake_slack: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackChannel]:
    channel = build_channel(SLACK, fake_slack, tmp_path)
    assert isinstance(channel, SlackChannel)
    await channel.start()
    yield channel
    await channel.close()


@pytest.fixture
async def telegram_channel(
    fake_telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[TelegramChannel]:
    channel = build_channel(TELEGRAM, fake_telegram, tmp_path)
    assert isinstance(channel, TelegramChannel)
    await channel.start()
    yield channel
    await channel.close()
