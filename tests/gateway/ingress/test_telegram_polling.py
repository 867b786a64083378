"""Telegram over long polling against the fake Bot API: the same parse, dedupe and queue as the
webhook, the offset confirmed only once an update is queued, 409s and lost connections met with
back-off, and one poller among several processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from config.settings import Settings
from core.redis.client import connect
from gateway.ingress.lease import RedisLease
from gateway.ingress.telegram_polling import TelegramPollingIngress
from tests.adapters.cases.telegram import BOT_TOKEN, TelegramCase, text_update
from tests.gateway.ingress.conftest import Served, replies, serving, until
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.fakes.telegram import FakeTelegram, running_fake_telegram
from tests.support.redis_server import RedisServer

CHAT = TelegramCase.chat


def fake_update(update_id: int, text: str) -> dict[str, Any]:
    return {**text_update(text, chat=CHAT, event=str(update_id)), "update_id": update_id}


def polling_settings(fake: FakeTelegram, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        telegram_bot_token=BOT_TOKEN,
        telegram_api_url=fake.api_url,
        telegram_bot_username="shop_test_bot",
        telegram_mode="polling",
        telegram_poll_timeout=1,
        **extra,
    )


def say(fake: FakeTelegram, text: str, event: str, chat: str = CHAT) -> int:
    """A user's message, numbered as Telegram numbers updates (each above the last)."""
    update = text_update(text, chat=chat, event=event)
    del update["update_id"]
    return fake.push(update)


async def test_conversation_with_a_lost_connection_in_the_middle(tmp_path: Path, real_brain: Any):
    """Only a bot token: the webhook a previous set-up left is deleted (and the log says why),
    the bot answers, a poll's connection is lost, and the next turn is answered once."""
    async with running_fake_telegram(BOT_TOKEN) as fake:
        fake.webhook_url = "https://old.example/webhooks/telegram"
        with capture_logs() as logs:
            async with serving(
                polling_settings(fake, tmp_path),
                nlu=real_brain.nlu,
                dialogue=real_brain.dialogue,
            ):
                first = say(fake, "where is my order", "e2e-1")
                await replies(fake, 0, lambda t: "order number" in t.lower())
                assert fake.webhook_url == ""
                seen = len(fake.sent())
                fake.drop_polls = 1
                await until(lambda: fake.drop_polls == 0, what="the poll to be dropped")
                second = say(fake, "A1B2C3", "e2e-2")
                await replies(fake, seen, lambda t: "A1B2C3" in t and "shipped" in t)
                await until(lambda: fake.confirmed > second, what="the offset past turn 2")
        assert fake.confirmed > first
        assert sorted(set(fake.delivered)) == sorted([first, second])
        asked = [s for s in fake.sent() if "order number" in s.text.lower()]
        shipped = [s for s in fake.sent() if "shipped" in s.text]
        assert len(asked) == 1 and len(shipped) == 1, fake.sent()
        # "typing…" is shown when each turn begins, before its reply.
        methods = [m for m, _ in fake.calls if m in ("sendChatAction", "sendMessage")]
        assert methods[0] == "sendChatAction" and methods.count("sendChatAction") == 2
        events = [e["event"] for e in logs]
        assert "telegram.webhook_deleted" in events
        assert events.count("telegram.polling_unreachable") == 1


async def test_a_redelivered_update_is_answered_once(tmp_path: Path):
    """Telegram delivers again what was never confirmed (a poller killed after queueing, before
    its next getUpdates): the queue's dedupe, the webhook's, drops it."""
    async with running_fake_telegram(BOT_TOKEN) as fake:
        settings = polling_settings(fake, tmp_path)
        async with serving(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
            first = say(fake, "hello", "dup-1")
            await until(lambda: fake.sent(), what="the first reply")
            fake.push(fake_update(first, "hello"))  # the same update_id again
            say(fake, "after", "dup-2")
            await until(lambda: any("after" in s.text for s in fake.sent()), what="turn 2")
            assert [s.text for s in fake.sent()] == ["#1 hello", "#2 after"]
            assert gw.count("gateway_duplicates_total", "telegram") == 1


async def test_offset_moves_only_once_the_update_is_queued(tmp_path: Path, own_redis: RedisServer):
    """With the queue (Redis) down, the update is fetched again and again but never confirmed;
    once Redis is back it is queued, confirmed and answered, once."""
    async with running_fake_telegram(BOT_TOKEN) as fake:
        settings = polling_settings(fake, tmp_path, redis_url=own_redis.url)
        async with serving(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()):
            await until(lambda: fake.called("deleteWebhook"), what="polling to start")
            own_redis.stop()
            update = say(fake, "kept", "offset-1")
            await until(lambda: fake.delivered.count(update) >= 2, what="a redelivery")
            assert fake.confirmed <= update
            own_redis.start()
            await until(lambda: fake.sent(), timeout=30, what="the reply after Redis came back")
            await until(lambda: fake.confirmed > update, what="the offset past the update")
            assert [s.text for s in fake.sent()] == ["#1 kept"]


async def test_conflict_is_logged_once_and_backed_off(tmp_path: Path):
    """A webhook set again while polling: getUpdates answers 409; one log line, and each retry
    waits longer than the one before (no busy loop)."""
    async with running_fake_telegram(BOT_TOKEN) as fake:
        settings = polling_settings(fake, tmp_path)
        with capture_logs() as logs:
            async with serving(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()):
                await until(lambda: fake.called("deleteWebhook"), what="polling to start")
                fake.webhook_url = "https://new.example/webhooks/telegram"
                await until(lambda: fake.conflicts >= 1, what="the first 409")
                started = time.monotonic()
                await until(lambda: fake.conflicts >= 4, what="three retries", timeout=30)
                elapsed = time.monotonic() - started
        # Back-off of 0.5 s, 1 s, 2 s at least before the second, third and fourth tries.
        assert elapsed >= 3.0, elapsed
        refused = [e for e in logs if e["event"] == "telegram.polling_refused"]
        assert len(refused) == 1 and refused[0]["code"] == 409
        assert "set-webhook" in refused[0]["hint"]


async def test_one_poller_among_two_processes(tmp_path: Path, redis_url: str):
    """Two gateways sharing Redis: one polls, the other stands by (no 409 between them); every
    update is answered once; when the poller stops, the other takes over."""
    async with running_fake_telegram(BOT_TOKEN) as fake:
        settings = polling_settings(fake, tmp_path, redis_url=redis_url)
        async with serving(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as a:
            with capture_logs() as logs:
                async with serving(
                    polling_settings(fake, tmp_path / "b", redis_url=redis_url),
                    nlu=KeywordNlu(),
                    dialogue=EchoDialogue(),
                ) as b:
                    pollers = [p for s in (a, b) for p in _pollers(s)]
                    await until(lambda: any(p.polling.is_set() for p in pollers), what="a poller")
                    for i in range(5):
                        say(fake, f"m{i}", f"two-{i}", chat=f"{2000 + i}")
                    await until(lambda: len(fake.sent()) >= 5, what="five replies")
                    assert sum(p.polling.is_set() for p in pollers) == 1
            assert any(e["event"] == "telegram.polling_standby" for e in logs)
            assert fake.conflicts == 0
            # b stopped; whichever polled, a still polls or takes over.
            say(fake, "m5", "two-5", chat="2005")
            await until(lambda: len(fake.sent()) >= 6, timeout=30, what="the sixth reply")
        # One conversation each (a backlog in one chat is answered as one turn).
        assert sorted(s.text for s in fake.sent()) == [f"#1 m{i}" for i in range(6)]


def _pollers(gw: Served) -> list[TelegramPollingIngress]:
    return [p for p in gw.loops if isinstance(p, TelegramPollingIngress)]


async def test_lease_is_taken_by_one_holder(redis_url: str):
    a = RedisLease(connect(redis_url), "t:lease", 1.0, owned=True)
    b = RedisLease(connect(redis_url), "t:lease", 1.0, owned=True)
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.renew()
    assert not await b.renew()
    await a.release()
    assert await b.acquire()
    await b.release()
