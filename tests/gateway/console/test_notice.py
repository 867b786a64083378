"""The team's Slack channel is told when a customer starts waiting: once per handoff, with the
channel, the intent, the start of what the customer wrote and a link to the conversation; a
Slack that refuses the post leaves the customer's turn untouched."""

from __future__ import annotations

from typing import Any

import pytest

from config.settings import SettingsError, load_settings
from gateway.build import build_gateway
from tests.gateway.console.test_api import say
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.fakes.slack import FakeSlack
from tests.support.handoff import PersonDialogue


def _slack(fake: FakeSlack) -> dict[str, Any]:
    return {
        "slack_signing_secret": "s" * 32,
        "slack_bot_token": fake.token,
        "slack_api_url": fake.api_url,
    }


def _notices(fake: FakeSlack) -> list[str]:
    return [c["text"] for c in fake.calls if c.get("channel") == "CTEAM"]


async def test_the_team_is_told_once_per_handoff(
    gateway_factory: Any, recording_channel: RecordingChannel, fake_slack: FakeSlack
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        console_notify_slack_channel="CTEAM",
        console_url="https://desk.example.com/console/",
        **_slack(fake_slack),
    ) as (_client, services):
        await say(services, "c1", "hello")
        assert _notices(fake_slack) == []
        long = "I want a person <now>, " + "my parcel never came " * 10
        await say(services, "c1", long)
        [conv] = await services.desk.conversations.queue()
        [text] = _notices(fake_slack)
        first, link = text.split("\n")
        # The customer's words as text: Slack's markup characters escaped.
        head = "A customer is waiting: test, human, “I want a person &lt;now&gt;, my"
        assert first.startswith(head)
        assert first.endswith("…”") and len(first) < 200
        assert link == f"https://desk.example.com/console#conversation-{conv.id}"
        # Waiting on: the customer's next words tell nobody again.
        await say(services, "c1", "still there?")
        assert len(_notices(fake_slack)) == 1
        # Slack refusing the post: logged, the customer's turn goes out all the same.
        fake_slack.failures.append((200, {"ok": False, "error": "channel_not_found"}, {}))
        await say(services, "c2", "a person please")
        assert recording_channel.texts("c2")[0] == "passing you to a person"
        assert fake_slack.failures == [] and len(_notices(fake_slack)) == 1  # it was tried


def test_a_notice_channel_needs_slack(tmp_path: Any) -> None:
    settings = load_settings(data_dir=tmp_path, console_notify_slack_channel="CTEAM")
    with pytest.raises(SettingsError, match="CONSOLE_NOTIFY_SLACK_CHANNEL"):
        build_gateway(settings, "serve", nlu=KeywordNlu(), dialogue=PersonDialogue())
