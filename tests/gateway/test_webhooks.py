"""POST /webhooks/{channel}: unknown channel, size limit, signature, malformed body, durable
enqueue before 200, duplicates, 503 when the queue cannot take the event."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any, ClassVar

import structlog

from core.channel import PayloadError, VerificationError, WebhookReply, WebhookRequest
from core.errors import QueueUnavailable
from core.models import Capabilities, ConversationRef, Inbound, Sender
from tests.support._raw_http import post_raw
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel

SECRET = b"s3cret"


class SignedChannel(RecordingChannel):
    """A minimal platform: JSON body, HMAC-SHA256 of the body in `X-Sig`."""

    name: ClassVar[str] = "test"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def verify(self, req: WebhookRequest) -> None:
        good = hmac.new(SECRET, req.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, req.header("x-sig")):
            raise VerificationError("bad X-Sig")

    def parse(self, req: WebhookRequest) -> WebhookReply:
        try:
            data = json.loads(req.body)
            return WebhookReply(
                events=[
                    Inbound(
                        event_id=data["id"],
                        conversation=ConversationRef(channel=self.name, chat_id=data["chat"]),
                        sender=Sender(id=data["chat"]),
                        text=data["text"],
                    )
                ],
                body=b"ok",
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"not a test event: {exc}") from None


def signed(body: dict[str, Any] | bytes) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"X-Sig": hmac.new(SECRET, raw, hashlib.sha256).hexdigest()}


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_signed_event_is_queued_answered_and_counted(gateway_factory: Any) -> None:
    channel = SignedChannel()
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
    channel = SignedChannel()
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), channels={"test": channel}
    ) as (client, _s):
        body, headers = signed({"id": "e1", "chat": "c1", "text": "hi"})
        statuses = await asyncio.gather(
            *(client.post("/webhooks/test", data=body, headers=headers) for _ in range(5))
        )
        assert [r.status for r in statuses] == [200] * 5
        await asyncio.sleep(0.3)
        assert channel.texts() == ["#1 hi"]
        text = await (await client.get("/metrics")).text()
        assert metric(text, 'gateway_duplicates_total{channel="test"}') == 4


def small_gateway(gateway_factory: Any) -> Any:
    """The test channel alone, no worker (what is queued stays queued), bodies up to 2 KiB."""
    return gateway_factory(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        channels={"test": SignedChannel()},
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
        assert await s.backends.queue.depth() == 0
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
        taken = await s.backends.queue.take(10, 1.0)
        assert [d.inbound.text for d in taken] == ["all at once", "in two pieces"]


async def test_queue_down_answers_503_so_the_platform_retries(gateway_factory: Any) -> None:
    channel = SignedChannel()
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), channels={"test": channel}
    ) as (client, s):
        real_put = s.backends.queue.put

        async def down(_: Inbound) -> bool:
            raise QueueUnavailable("connection refused")

        s.backends.queue.put = down  # type: ignore[method-assign]
        body, headers = signed({"id": "e1", "chat": "c1", "text": "hi"})
        r = await client.post("/webhooks/test", data=body, headers=headers)
        assert r.status == 503 and r.headers["Retry-After"] == "5"
        s.backends.queue.put = real_put  # type: ignore[method-assign]
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
