"""Abuse limits in a real Redis hold across processes: two clients (as two `serve` or `worker`
processes have) share every window and claim, and two gateways sharing Redis share the web
chat's limit on new sessions per address."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from core.errors import ActionRefused
from core.redis.client import connect
from core.redis.limits import RedisLimits
from integrations.guard import ActionGuard, GuardSettings
from integrations.shop import RESET
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.gateway_app import running_gateway


@pytest.fixture
async def two(redis_url: str) -> AsyncIterator[tuple[RedisLimits, RedisLimits]]:
    a, b = connect(redis_url), connect(redis_url)
    yield RedisLimits(a, prefix="t"), RedisLimits(b, prefix="t")
    await a.aclose()
    await b.aclose()


async def test_a_window_is_shared_and_counts_an_event_once(
    two: tuple[RedisLimits, RedisLimits],
) -> None:
    a, b = two
    results = await asyncio.gather(
        *(limits.hit("k", 5, 60, f"{n}-{i}") for i in range(10) for n, limits in enumerate(two))
    )
    assert sum(r == 0 for r in results) == 5
    assert all(55 < r <= 60 for r in results if r)
    allowed = next(f"{i % 2}-{i // 2}" for i, r in enumerate(results) if r == 0)
    assert await b.hit("k", 5, 60, allowed) == 0.0  # counted before (maybe by the other one)
    assert await a.hit("k", 5, 60, allowed) == 0.0
    assert await a.hit("other", 5, 60, "x") == 0.0


async def test_a_window_frees_up(two: tuple[RedisLimits, RedisLimits]) -> None:
    a, b = two
    assert await a.hit("k", 1, 0.2, "e1") == 0.0
    assert 0 < await b.hit("k", 1, 0.2, "e2") <= 0.2
    await asyncio.sleep(0.25)
    assert await b.hit("k", 1, 0.2, "e2") == 0.0


async def test_a_claim_is_shared_and_only_its_owner_releases_it(
    two: tuple[RedisLimits, RedisLimits], redis_url: str
) -> None:
    a, b = two
    assert await a.claim("reset", 600, "turn-1") == 0.0
    assert await b.claim("reset", 600, "turn-1") == 0.0  # the same turn, on another worker
    assert 599 < await b.claim("reset", 600, "turn-2") <= 600
    await b.release("reset", "turn-2")
    assert await b.claim("reset", 600, "turn-2") > 0
    await a.release("reset", "turn-1")
    assert await b.claim("reset", 600, "turn-2") == 0.0
    r = Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in await r.keys("t:*"))
    await r.aclose()
    assert keys == ["t:once:reset"]


async def test_forty_resets_over_two_workers_send_one(
    two: tuple[RedisLimits, RedisLimits],
) -> None:
    guards = [ActionGuard(limits, GuardSettings()) for limits in two]

    async def ask(i: int) -> bool:
        try:
            await guards[i % 2].admit("shop.password_reset", RESET, {"email": "v@x.io"}, f"t{i}")
        except ActionRefused:
            return False
        return True

    assert sum(await asyncio.gather(*(ask(i) for i in range(40)))) == 1


async def test_two_gateways_share_the_limit_on_new_sessions(redis_url: str, tmp_path: Path) -> None:
    settings: dict[str, Any] = {
        "redis_url": redis_url,
        "webchat_sessions_per_address": 3,
        "data_dir": tmp_path,
    }
    async with (
        running_gateway(nlu=KeywordNlu(), dialogue=EchoDialogue(), **settings) as (one, _),
        running_gateway(nlu=KeywordNlu(), dialogue=EchoDialogue(), **settings) as (two_, _),
    ):
        hellos = []
        for client in (one, two_, one, two_):
            ws = await client.ws_connect("/chat/ws")
            hellos.append(await asyncio.wait_for(ws.receive_json(), 5))
            await ws.close()
        # Both share DATA_DIR here, so both sign with the same key: a session one issued is
        # taken by the other.
        back = await two_.ws_connect(f"/chat/ws?session={hellos[0]['session']}")
        assert (await asyncio.wait_for(back.receive_json(), 5)) == hellos[0]
        await back.close()
    assert ["session" in h for h in hellos] == [True, True, True, False]
    assert "Too many new chats" in hellos[3]["error"]
