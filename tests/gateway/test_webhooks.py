"""POST /webhooks/{channel}: unknown channel, size limit, signature, malformed body, durable
enqueue before 200, duplicates, 503 when the queue cannot take the event."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from typing import Any

import pytest
import structlog
from aiohttp import web

from config.settings import load_settings
from core.channel import WebhookRequest
from core.errors import QueueUnavailable
from core.models import Capabilities, Inbound
from core.redis.client import connect
from gateway.app import LINGER, create_app
from gateway.build import build_gateway
from tests.adapters.cases import slack as slack_case
from tests.adapters.cases import telegram as telegram_case
from tests.support._raw_http import closed, post_headers, post_raw, status_of
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel, sign

SECRET = b"s3cret"


def signed_channel() -> RecordingChannel:
    """A minimal platform: JSON body, HMAC-SHA256 of the body in `X-Sig`."""
    return RecordingChannel(capabilities=Capabilities(), secret=SECRET)


def signed(body: dict[str, Any] | bytes) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"X-Sig": sign(SECRET, raw)}


async def until_sent(channel: RecordingChannel, count: int, timeout: float = 10.0) -> None:
    """Until `channel` has sent at least `count` messages (or fail after `timeout`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(channel.sent) < count:
        assert asyncio.get_running_loop().time() < deadline, f"sent only {channel.texts()}"
        await asyncio.sleep(0.02)


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_signed_event_is_queued_answered_and_counted(gateway_factory: Any) -> None:
    channel = signed_channel()
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), channels={"test": channel}
    ) as (client, _s):
        body, headers = signed({"id": "e1", "chat": "c1", "text": "hi"})
        resp = await client.post("/webhooks/test", data=body, headers=headers)
        assert resp.status == 200 and await resp.text() == "ok"
        for _ in range(100):
            if channel.sent:
                break
            await asyncio.sleep(0.02)
        assert channel.texts() == ["#1 hi"]
        text = await (await client.get("/metrics")).text()
        assert metric(text, 'gateway_messages_in_total{channel="test"}') == 1
        assert metric(text, 'gateway_messages_out_total{channel="test"}') == 1
        assert metric(text, 'gateway_turn_latency_seconds_count{channel="test"}') == 1
        assert "gateway_queue_depth 0.0" in text


async def test_retried_delivery_is_answered_once(gateway_factory: Any) -> None:
    channel = signed_channel()
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), channels={"test": channel}
    ) as (client, _s):
        body, headers = signed({"id": "e1", "chat": "c1", "text": "hi"})
        statuses = await asyncio.gather(
            *(client.post("/webhooks/test", data=body, headers=headers) for _ in range(5))
        )
        assert [r.status for r in statuses] == [200] * 5
        # Told apart before each answer: one queued, four duplicates.
        text = await (await client.get("/metrics")).text()
        assert metric(text, 'gateway_messages_in_total{channel="test"}') == 1
        assert metric(text, 'gateway_duplicates_total{channel="test"}') == 4
        await until_sent(channel, 1)
        # A later event of the same chat, once the first answer is out: one chat's turns run in
        # order, so an answer to a retry would have come before this one's (and made it #3).
        body, headers = signed({"id": "e2", "chat": "c1", "text": "sentinel"})
        assert (await client.post("/webhooks/test", data=body, headers=headers)).status == 200
        await until_sent(channel, 2)
        assert channel.texts() == ["#1 hi", "#2 sentinel"]


def small_gateway(gateway_factory: Any) -> Any:
    """The test channel alone, no worker (what is queued stays queued), bodies up to 2 KiB."""
    return gateway_factory(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        channels={"test": signed_channel()},
        with_worker=False,
        max_body_bytes=2048,
    )


async def test_refusals_queue_nothing(gateway_factory: Any) -> None:
    async with small_gateway(gateway_factory) as (client, s):
        with structlog.testing.capture_logs() as logs:
            r = await client.post("/webhooks/nope", data=b"{}")
            assert r.status == 404 and "unknown channel 'nope'" in (await r.json())["error"]

            body, _ = signed({"id": "e1", "chat": "c1", "text": "hi"})
            r = await client.post("/webhooks/test", data=body, headers={"X-Sig": "0" * 64})
            assert r.status == 401

            body, headers = signed(b"{not json")
            r = await client.post("/webhooks/test", data=body, headers=headers)
            assert r.status == 400 and "not a test event" in (await r.json())["error"]

            big, headers = signed({"id": "e2", "chat": "c1", "text": "x" * 5000})
            r = await client.post("/webhooks/test", data=big, headers=headers)
            assert r.status == 413

            async def chunks():  # no Content-Length: refused by its size, however it arrives
                for _ in range(10):
                    yield b"x" * 1000

            r = await client.post("/webhooks/test", data=chunks(), headers=headers)
            assert r.status == 413
        assert await s.storage.queue.depth() == 0
        reasons = [
            (e.get("status"), e.get("reason", "")) for e in logs if e["event"] == "webhook.rejected"
        ]
        assert [st for st, _ in reasons] == [404, 401, 400, 413, 413]
        assert "bad X-Sig" in reasons[1][1]
        text = await (await client.get("/metrics")).text()
        assert (
            metric(text, 'gateway_webhooks_rejected_total{channel="test",reason="unverified"}') == 1
        )


async def test_a_body_is_read_whole_however_it_arrives(
    gateway_factory: Any, monkeypatch: Any
) -> None:
    """A body that came with its headers is taken from the buffer as it lies; one still arriving
    when the handler runs is awaited to its end. Both are verified and queued whole."""
    from aiohttp import web

    awaited: list[int] = []
    real_read = web.BaseRequest.read

    async def counting_read(self: web.BaseRequest) -> bytes:
        awaited.append(1)
        return await real_read(self)

    monkeypatch.setattr(web.BaseRequest, "read", counting_read)
    async with small_gateway(gateway_factory) as (client, s):
        host, port = client.server.host, client.server.port
        assert host is not None and port is not None
        body, headers = signed({"id": "e1", "chat": "c1", "text": "all at once"})
        assert await post_raw(host, port, "/webhooks/test", headers, body) == 200
        assert awaited == []
        body, headers = signed({"id": "e2", "chat": "c1", "text": "in two pieces"})
        assert await post_raw(host, port, "/webhooks/test", headers, body, split=10) == 200
        assert awaited == [1]
        body, headers = signed({"id": "e3", "chat": "c1", "text": "x" * 3000})
        assert await post_raw(host, port, "/webhooks/test", headers, body, split=10) == 413
        assert awaited == [1]  # refused by its declared length, before reading
        taken = await s.storage.queue.take(10, 1.0)
        assert [d.inbound.text for d in taken] == ["all at once", "in two pieces"]


async def test_queue_down_answers_503_so_the_platform_retries(gateway_factory: Any) -> None:
    channel = signed_channel()
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), channels={"test": channel}
    ) as (client, s):
        real_put = s.storage.queue.put

        async def down(_: Inbound) -> bool:
            raise QueueUnavailable("connection refused")

        s.storage.queue.put = down  # type: ignore[method-assign]
        body, headers = signed({"id": "e1", "chat": "c1", "text": "hi"})
        r = await client.post("/webhooks/test", data=body, headers=headers)
        assert r.status == 503 and r.headers["Retry-After"] == "5"
        s.storage.queue.put = real_put  # type: ignore[method-assign]
        r = await client.post("/webhooks/test", data=body, headers=headers)
        assert r.status == 200
        for _ in range(100):
            if channel.sent:
                break
            await asyncio.sleep(0.02)
        assert channel.texts() == ["#1 hi"]


async def test_health_and_readiness(gateway_factory: Any) -> None:
    nlu = KeywordNlu()
    nlu.loaded = False
    async with gateway_factory(nlu=nlu, dialogue=EchoDialogue()) as (client, _s):
        assert (await client.get("/healthz")).status == 200
        r = await client.get("/readyz")
        assert r.status == 503
        assert (await r.json())["checks"] == {
            "queue": "ok",
            "store": "ok",
            "model": "intent model not loaded",
        }
        nlu.loaded = True
        r = await client.get("/readyz")
        assert r.status == 200 and (await r.json())["status"] == "ready"


# -- hostile clients: slow bodies, credentials checked before the body, a frozen Redis --------


async def trickle(writer: asyncio.StreamWriter, every: float = 0.1) -> None:
    """One byte of body every `every` seconds, until cancelled or the server closes."""
    while not writer.is_closing():
        writer.write(b" ")
        await asyncio.sleep(every)


@pytest.mark.parametrize(
    ("path", "settings", "headers"),
    [
        (
            "/webhooks/telegram",
            {
                "telegram_bot_token": telegram_case.BOT_TOKEN,
                "telegram_secret_token": telegram_case.SECRET_TOKEN,
            },
            {"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"},
        ),
        (
            "/webhooks/slack",
            {"slack_signing_secret": slack_case.SIGNING_SECRET, "slack_bot_token": "xoxb-1"},
            slack_case.sign(b"{}", at=int(time.time()) - 600),  # outside the 5-minute window
        ),
    ],
    ids=["telegram-secret", "slack-timestamp"],
)
async def test_credentials_in_the_headers_are_checked_before_the_body_is_waited_for(
    gateway_factory: Any, path: str, settings: dict[str, str], headers: dict[str, str]
) -> None:
    """A client trickling a body behind a wrong secret, or a stale Slack timestamp, is answered
    401 at once and its connection closed, not held while the body comes."""
    settings = {**settings, "telegram_api_url": "http://127.0.0.1:9/bot"}
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False, **settings
    ) as (client, s):
        host, port = client.server.host, client.server.port
        start = time.monotonic()
        headers = {**headers, "Content-Type": "application/json"}
        reader, writer = await post_headers(host, port, path, headers, 100_000)
        slow = asyncio.create_task(trickle(writer))
        try:
            assert await asyncio.wait_for(status_of(reader), 2.0) == 401
            answered = time.monotonic() - start
            assert await asyncio.wait_for(closed(reader), LINGER + 2.0)
            cut_off = time.monotonic() - start
        finally:
            slow.cancel()
            writer.close()
        assert answered < 1.0, f"answered after {answered:.2f} s"
        assert cut_off < LINGER + 1.0, f"held {cut_off:.2f} s"
        assert await s.storage.queue.depth() == 0


async def test_a_body_trickled_past_the_read_timeout_gets_408_and_is_cut_off(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        channels={"test": signed_channel()},
        with_worker=False,
        body_read_timeout=0.5,
    ) as (client, s):
        host, port = client.server.host, client.server.port
        with structlog.testing.capture_logs() as logs:
            start = time.monotonic()
            reader, writer = await post_headers(host, port, "/webhooks/test", {"X-Sig": "0"}, 1000)
            slow = asyncio.create_task(trickle(writer))
            try:
                assert await asyncio.wait_for(status_of(reader), 3.0) == 408
                answered = time.monotonic() - start
                assert await asyncio.wait_for(closed(reader), LINGER + 2.0)
                cut_off = time.monotonic() - start
            finally:
                slow.cancel()
                writer.close()
        assert 0.5 <= answered < 1.5, f"answered after {answered:.2f} s"
        assert cut_off < 0.5 + LINGER + 1.0, f"held {cut_off:.2f} s"
        assert [e["status"] for e in logs if e["event"] == "webhook.rejected"] == [408]
        text = await (await client.get("/metrics")).text()
        assert (
            metric(text, 'gateway_webhooks_rejected_total{channel="test",reason="too_slow"}') == 1
        )
        assert await s.storage.queue.depth() == 0


async def test_a_frozen_redis_gets_a_503_within_a_second_and_nothing_is_lost(
    gateway_factory: Any, own_redis: Any
) -> None:
    """Redis stopped (SIGSTOP) takes connections and never answers: the webhook answers 503
    inside a second (Slack gives up after 3), and the platform's retry once Redis is back
    leaves the event queued exactly once."""
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        channels={"test": signed_channel()},
        with_worker=False,  # what is queued stays queued, to be counted
        redis_url=own_redis.url,
    ) as (client, _s):
        first, headers0 = signed({"id": "f0", "chat": "c1", "text": "before"})
        assert (await client.post("/webhooks/test", data=first, headers=headers0)).status == 200
        body, headers = signed({"id": "f1", "chat": "c1", "text": "while frozen"})
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            r = await client.post("/webhooks/test", data=body, headers=headers)
            took = time.monotonic() - start
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        assert r.status == 503 and r.headers["Retry-After"] == "5"
        assert took < 1.0, f"503 after {took:.2f} s"
        r = await client.post("/webhooks/test", data=body, headers=headers)  # the retry
        assert r.status == 200
    redis = connect(own_redis.url)
    try:
        ids = []
        for part in range(16):
            for _id, fields in await redis.xrange(f"gateway:q:{part}"):
                ids.append(json.loads(fields[b"e"])["event_id"])
    finally:
        await redis.aclose()
    assert sorted(ids) == ["f0", "f1"]


async def test_a_client_that_hangs_up_mid_body_is_one_log_line(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Not aiohttp's "Error handling request" with a traceback per dropped connection (an
    attacker's slow clients would fill the log with them). Served as `serve` serves (aiohttp's
    test server cancels the handler instead, which `serve` does not)."""
    reading = asyncio.Event()

    class Watched(RecordingChannel):
        def precheck(self, req: WebhookRequest) -> None:
            reading.set()  # the body is read next

    services = build_gateway(
        load_settings(data_dir=tmp_path),
        "serve",
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        with_worker=False,
        channels={"test": Watched(capabilities=Capabilities(), secret=SECRET)},
    )
    runner = web.AppRunner(create_app(services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        with structlog.testing.capture_logs() as logs:
            _, writer = await post_headers("127.0.0.1", site.port, "/webhooks/test", {}, 1000)
            writer.write(b"{")
            await asyncio.wait_for(reading.wait(), 5)
            writer.close()
            deadline = time.monotonic() + 5
            while not any(e["event"] == "webhook.disconnected" for e in logs):
                assert time.monotonic() < deadline, "the hang-up was never handled"
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
