"""`forget` on a real redis-server: one customer's queued and dead-lettered events, their dedupe
keys, sessions and flood counters go; another customer's stay; nothing left in Redis names the
customer or holds their text, and the erasure's own log line does not either."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import structlog

from config.logging import configure
from config.settings import load_settings
from core.forget import Customer
from core.keys import hashed
from core.models import ConversationRef, Inbound, Sender
from core.redact import mask
from core.redis.client import connect
from core.redis.queue import RedisQueue
from core.redis.ratelimit import RedisSenderLimit
from core.redis.store import RedisStore
from core.session import Session
from gateway.cli import main
from gateway.privacy import Retention, forget_customer

ANA, BEN = "whatsapp:+14155550123", "whatsapp:+14155550999"
SECRET = "my card is on the kitchen table"


def said(user: str, n: int, text: str) -> Inbound:
    return Inbound(
        event_id=f"SM{user[-4:]}{n}",
        conversation=ConversationRef(channel="whatsapp", chat_id=user),
        sender=Sender(id=user),
        text=text,
    )


async def everything(url: str) -> str:
    """Every key and value in the server, streams and sessions included, as text."""
    r = connect(url)
    out: list[str] = []
    try:
        async for key in r.scan_iter():
            kind = (await r.type(key)).decode()
            out.append(key.decode())
            if kind == "string":
                out.append(repr(await r.get(key)))
            elif kind == "stream":
                out.append(repr(await r.xrange(key)))
            elif kind == "zset":
                out.append(repr(await r.zrange(key, 0, -1)))
    finally:
        await r.aclose()
    return "\n".join(out)


@pytest.fixture
def json_logs():
    configure("info", "json", mask=mask)
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("json_logs")
async def test_forget_erases_one_customer_everywhere_in_redis(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    redis = connect(redis_url)
    queue = RedisQueue(redis, prefix="gw", claim_idle_ms=300, partitions=4)
    await queue.start()
    try:
        for m in [said(ANA, 1, SECRET), said(ANA, 2, "hello?"), said(BEN, 1, "hi from ben")]:
            assert await queue.put(m)
        taken = []
        deadline = time.monotonic() + 10
        while not any(d.inbound.sender.id == ANA for d in taken):
            assert time.monotonic() < deadline, "nothing was delivered"
            taken += await queue.take(10, 0.2)
        ana = [d for d in taken if d.inbound.sender.id == ANA]
        await queue.dead_letter(ana[:1], "failed")  # one dead letter; the other stays pending
        await RedisStore(redis, prefix="gw").save(Session.new(said(ANA, 1, "").conversation))
        await RedisStore(redis, prefix="gw").save(Session.new(said(BEN, 1, "").conversation))
        await RedisSenderLimit(redis, limit=5, window=60, prefix="gw").hit(f"whatsapp:{ANA}", "x")
    finally:
        await queue.close()
        await redis.aclose()
    before = await everything(redis_url)
    assert SECRET in before and hashed(f"whatsapp:{ANA}") in before  # session, flood counter

    settings = load_settings(redis_url=redis_url, redis_prefix="gw")
    capsys.readouterr()
    erasure = await forget_customer(settings, Customer("whatsapp", ANA))
    logged = capsys.readouterr().err

    assert erasure.removed["queued events"] == 1 and erasure.removed["dead letters"] == 1
    assert erasure.removed["sessions"] == 1 and erasure.removed["dedupe keys"] == 2
    assert erasure.removed["rate-limit counters"] == 1
    after = await everything(redis_url)
    assert SECRET not in after and "hello?" not in after and hashed(f"whatsapp:{ANA}") not in after
    assert "14155550123" not in after and hashed(f"whatsapp:SM{ANA[-4:]}1") not in after
    assert "hi from ben" in after and hashed(f"whatsapp:{BEN}") in after, "another is kept"
    event = json.loads(logged.strip().splitlines()[-1])
    assert event["event"] == "customer.forgotten" and "0123" not in logged

    again = await forget_customer(settings, Customer("whatsapp", ANA))
    assert again.report() == "nothing was found"


async def test_retention_drops_old_dead_letters(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        old_ms = int((time.time() - 40 * 86400) * 1000)
        await redis.xadd("gw:dead", {"event": b"old"}, id=f"{old_ms}-0")
        await redis.xadd("gw:dead", {"event": b"new"})
    finally:
        await redis.aclose()
    settings = load_settings(redis_url=redis_url, redis_prefix="gw", retention_days=30)
    # One pass by hand (entering the context starts the daily loop, which waits before its first)
    assert (await Retention(settings, every=3600).sweep())["dead letters"] == 1
    assert "old" not in await everything(redis_url) and "new" in await everything(redis_url)


def test_forget_without_redis_reads_the_spill_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    spill = tmp_path / "queue-spill.jsonl"
    spill.write_text(said(ANA, 1, SECRET).to_json() + "\n" + said(BEN, 1, "hi").to_json() + "\n")
    assert main(["forget", "--channel", "whatsapp", "--user", ANA, "--log-level", "error"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 queued events" in out
    assert SECRET not in spill.read_text() and "hi" in spill.read_text()
    assert main(["forget", "--channel", "telegram", "--user", "42", "--log-level", "error"]) == 0
    assert capsys.readouterr().out.startswith("nothing was found")


def test_unknown_customer_in_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["forget", "--channel", "slack", "--user", "U404", "--log-level", "error"]) == 0
    assert capsys.readouterr().out.strip() == "nothing was found"
