"""Slack over Socket Mode against the fake Socket Mode server: envelopes acknowledged once
queued, through the same parse and dedupe as the webhook; `disconnect` and a lost connection
met with a new connection and nothing lost or doubled; bad envelopes acknowledged and logged."""

from __future__ import annotations

import itertools
import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from config.settings import Settings, SettingsError, load_settings
from core.errors import StartupError
from gateway.build import build_gateway
from gateway.ingress.slack_socket import SocketModeIngress
from tests.adapters.cases.slack import BOT_TOKEN, SlackCase, event_body, message_event
from tests.gateway.ingress.conftest import Served, replies, serving, until
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.fakes.slack import FakeSlack, running_fake_slack

CHAT = SlackCase.chat


def socket_settings(fake: FakeSlack, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=fake.app_token,
        slack_api_url=fake.api_url,
        slack_mode="socket",
        slack_socket_ping_interval=0.2,
        **extra,
    )


def echoing(fake: FakeSlack, tmp_path: Path) -> AbstractAsyncContextManager[Served]:
    """A gateway on Socket Mode whose bot echoes (`#<turn> <text>`)."""
    return serving(socket_settings(fake, tmp_path), nlu=KeywordNlu(), dialogue=EchoDialogue())


def event(text: str, name: str, chat: str = CHAT) -> dict[str, Any]:
    """An Events API request as Socket Mode carries it (the webhook's body, unsigned)."""
    return json.loads(event_body(message_event(text, chat=chat, event=name), f"Ev{name}"))


def socket(gw: Served) -> SocketModeIngress:
    (loop,) = [x for x in gw.loops if isinstance(x, SocketModeIngress)]
    return loop


async def connected(fake: FakeSlack, gw: Served, count: int = 1) -> None:
    await until(lambda: socket(gw).hellos >= count and fake.sockets, what="a connection")


async def test_conversation_with_a_disconnect_in_the_middle(tmp_path: Path, real_brain: Any):
    """Only an app token and a bot token: the bot answers; Slack says `disconnect`, a new
    connection takes over, and the next turn is answered once."""
    async with running_fake_slack(BOT_TOKEN) as fake:
        settings = socket_settings(fake, tmp_path)
        async with serving(settings, nlu=real_brain.nlu, dialogue=real_brain.dialogue) as gw:
            await connected(fake, gw)
            first = await fake.push(event("where is my order", "sock-1"))
            await replies(fake, 0, lambda t: "order number" in t.lower())
            assert fake.acked(first)
            seen = len(fake.sent())
            await fake.disconnect()
            await until(lambda: fake.opened >= 2 and len(fake.sockets) == 1, what="a reconnect")
            second = await fake.push(event("A1B2C3", "sock-2"))
            await replies(fake, seen, lambda t: "A1B2C3" in t and "shipped" in t)
            assert fake.acked(second)
        asked = [s for s in fake.sent() if "order number" in s.text.lower()]
        shipped = [s for s in fake.sent() if "shipped" in s.text]
        assert len(asked) == 1 and len(shipped) == 1, fake.sent()


async def test_a_lost_connection_is_made_again(tmp_path: Path):
    async with (
        running_fake_slack(BOT_TOKEN) as fake,
        echoing(fake, tmp_path) as gw,
    ):
        await connected(fake, gw)
        await fake.push(event("one", "lost-1"))
        await until(lambda: fake.sent(), what="the first reply")
        fake.drop()
        await until(lambda: fake.opened >= 2 and fake.sockets, what="a new connection")
        second = await fake.push(event("two", "lost-2"))
        await until(lambda: len(fake.sent()) >= 2, what="the second reply")
        assert fake.acked(second)
        assert [s.text for s in fake.sent()] == ["#1 one", "#2 two"]


async def test_reconnects_wait_longer_after_each_failure(tmp_path: Path):
    """Slack unreachable after a lost connection (`apps.connections.open` failing): each try
    waits about twice as long as the one before, one log line for the streak; once Slack is
    back the connection is made and the next message answered."""
    async with running_fake_slack(BOT_TOKEN) as fake:
        with capture_logs() as logs:
            async with echoing(fake, tmp_path) as gw:
                await connected(fake, gw)
                fake.refuse_opens = 4
                fake.drop()
                await until(lambda: fake.opened >= 2 and fake.sockets, timeout=30, what="back")
                await connected(fake, gw, 2)
                await fake.push(event("still there?", "backoff-1"))
                await until(lambda: fake.sent(), what="the reply after the outage")
        assert [s.text for s in fake.sent()] == ["#1 still there?"]
        tries = fake.opens[1:]  # the first is the start's
        assert len(tries) == 5, tries
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        # 1 s, 2 s, 4 s, 8 s (after 0.5 s before the first), each with up to a quarter more
        for gap, least in zip(gaps, (1.0, 2.0, 4.0, 8.0), strict=True):
            assert least * 0.95 <= gap <= least * 1.25 + 1.0, gaps
        events = [e["event"] for e in logs]
        assert events.count("slack.socket_refused") == 1
        assert "slack.socket_reconnected" in events


async def test_a_disconnect_while_slack_is_unreachable_is_retried_with_back_off(tmp_path: Path):
    """slack_sdk answers `disconnect` at once; when that try fails (Slack unreachable), the
    keeper goes on with its back-off and nothing is lost."""
    async with running_fake_slack(BOT_TOKEN) as fake:
        async with echoing(fake, tmp_path) as gw:
            await connected(fake, gw)
            fake.refuse_opens = 2
            await fake.disconnect("warning")
            await until(lambda: len(fake.opens) >= 2, what="slack_sdk's own try")
            fake.drop()  # Slack closes the old connection, as it said it would
            await until(lambda: fake.opened >= 2 and fake.sockets, timeout=30, what="back")
            await connected(fake, gw, 2)
            envelope = await fake.push(event("hello again", "disc-1"))
            await until(lambda: fake.sent(), what="the reply")
            assert fake.acked(envelope)
        assert [s.text for s in fake.sent()] == ["#1 hello again"]
        assert len(fake.opens) == 4, fake.opens  # start, slack_sdk's, the keeper's two


async def test_a_button_press_arrives_as_an_interactive_envelope(tmp_path: Path):
    action = {
        "type": "block_actions",
        "user": {"id": "U2147483697", "username": "ada"},
        "channel": {"id": CHAT},
        "container": {"type": "message", "channel_id": CHAT},
        "trigger_id": "123.456.abc",
        "actions": [
            {
                "type": "button",
                "action_id": "a1",
                "text": {"type": "plain_text", "text": "Track"},
                "value": "track-order",
                "action_ts": "1700000001.000100",
            }
        ],
    }
    async with (
        running_fake_slack(BOT_TOKEN) as fake,
        echoing(fake, tmp_path) as gw,
    ):
        await connected(fake, gw)
        envelope = await fake.push(action, "interactive")
        await until(lambda: fake.sent(), what="the reply to the press")
        assert fake.acked(envelope)
        assert [s.text for s in fake.sent()] == ["#1 track-order"]


async def test_bad_envelopes_are_acknowledged_logged_and_not_queued(tmp_path: Path):
    async with running_fake_slack(BOT_TOKEN) as fake:
        with capture_logs() as logs:
            async with echoing(fake, tmp_path) as gw:
                await connected(fake, gw)
                await fake.push_raw("this is not JSON")
                await fake.push_raw('{"envelope_id": "bad-1", "type": "events_api", "payl')
                unknown = await fake.push({"command": "/order"}, "slash_commands")
                malformed = await fake.push(
                    {
                        "type": "event_callback",
                        "event_id": "Ev9",
                        "event": {"type": "message", "channel": 5},
                    }
                )
                # The barrier: a valid message answered once everything before it was read.
                await fake.push(event("after", "bad-2"))
                await until(lambda: fake.sent(), what="the reply after the bad envelopes")
                for envelope in ("bad-1", unknown, malformed):
                    await until(lambda e=envelope: fake.acked(e), what=f"the ack of {envelope}")
                assert [s.text for s in fake.sent()] == ["#1 after"]
                assert gw.count("gateway_messages_in_total", "slack") == 1
        events = [e["event"] for e in logs]
        assert events.count("slack.socket_unreadable") == 2
        assert "slack.socket_ignored" in events and "slack.socket_refused" in events


async def test_two_connections_one_reply_per_event(tmp_path: Path, redis_url: str):
    """Two processes, a connection each; Slack sends one event to both (a retry on another
    connection): queued once, answered once."""
    async with running_fake_slack(BOT_TOKEN) as fake:
        a_settings = socket_settings(fake, tmp_path / "a", redis_url=redis_url)
        b_settings = socket_settings(fake, tmp_path / "b", redis_url=redis_url)
        async with (
            serving(a_settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as a,
            serving(b_settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as b,
        ):
            await connected(fake, a)
            await connected(fake, b)
            await until(lambda: len(fake.sockets) == 2, what="two connections")
            payload = event("once", "twice-1")
            first = await fake.push(payload, to=0)
            second = await fake.push(payload, to=1)
            await fake.push(event("after", "twice-2"), to=0)
            await until(lambda: len(fake.sent()) >= 2, what="two replies")
            await until(lambda: fake.acked(first) and fake.acked(second), what="both acks")
            # Two processes queue the two events: which one is taken first is not fixed.
            assert sorted(s.text.split(" ", 1)[1] for s in fake.sent()) == ["after", "once"]
            dupes = a.count("gateway_duplicates_total", "slack")
            dupes += b.count("gateway_duplicates_total", "slack")
            assert dupes == 1


def test_a_bot_token_where_the_app_token_belongs_is_named():
    with pytest.raises(SettingsError) as err:
        load_settings(slack_app_token="xoxb-1-2-3")
    assert "SLACK_APP_TOKEN" in str(err.value) and "xapp-" in str(err.value)
    assert "xoxb-1-2-3" not in str(err.value)


def test_socket_mode_without_an_app_token_is_refused_at_start(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, slack_bot_token=BOT_TOKEN, slack_mode="socket")
    with pytest.raises(StartupError, match="SLACK_APP_TOKEN"):
        build_gateway(settings, "serve", nlu=KeywordNlu(), dialogue=EchoDialogue())
