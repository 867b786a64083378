"""The e-mail reply ledger in Redis: two workers (two channel instances, two clients) share who
was answered, so a mail loop gets one reply across processes, not one per worker."""

from __future__ import annotations

import pytest

from adapters.email import EmailChannel
from config.settings import load_settings
from core.errors import StoreUnavailable
from core.models import Outbound
from core.redis.client import connect
from core.redis.ledger import RedisReplyLedger
from gateway.channels import build_channels
from tests.support.fakes.smtp import SmtpSink
from tests.support.redis_server import RedisServer

OOO = (
    b"Return-Path: <ada@client.example>\r\nFrom: Ada <ada@client.example>\r\n"
    b"To: help@shop.example\r\nSubject: Away\r\nMessage-ID: <{mid}>\r\n\r\n"
    b"I am out of the office.\r\n"
)


async def answer(ch: EmailChannel, mid: str) -> None:
    [event] = ch.parse_mail(OOO.replace(b"{mid}", mid.encode())).events
    await ch.before_turn(event)
    await ch.send(Outbound(conversation=event.conversation, text="Sorry, I did not get that."))


async def test_two_workers_answer_a_repeating_responder_once(
    redis_url: str, smtp_sink: SmtpSink
) -> None:
    settings = load_settings(
        redis_url=redis_url,
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
        email_from="Shop Bot <help@shop.example>",
    )
    workers = [build_channels(settings)["email"] for _ in range(2)]
    try:
        for i, ch in enumerate(workers):
            assert isinstance(ch, EmailChannel)
            await answer(ch, f"ooo{i}@client.example")
    finally:
        for ch in workers:
            await ch.close()
    assert len(smtp_sink.mail) == 1


async def test_an_unreachable_ledger_is_a_store_outage(own_redis: RedisServer) -> None:
    ledger = RedisReplyLedger(connect(own_redis.url))
    assert await ledger.claim("k", "m1", 60) and not await ledger.claim("k", "m2", 60)
    assert await ledger.count("s", "a", 60) == 1 and await ledger.count("s", "b", 60) == 2
    own_redis.stop()
    with pytest.raises(StoreUnavailable):
        await ledger.claim("k", "m1", 60)
    await ledger.close()
