"""The console at scale, with two real `serve` processes sharing one Redis and one PostgreSQL:
process A runs no worker, so what its console socket shows can only have come over the relay;
process B takes the customer's webhook and runs the turn. An agent signed in on A sees the
customer's message live, and a reply posted through B reaches the customer's channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.sql.agents import SqlAgents
from core.sql.db import Database
from tests.core.redis.cluster import Cluster, Recorder, deliver, payload, until
from tests.support.postgres_server import postgres, postgres_url

__all__ = ["postgres", "postgres_url"]


@pytest.fixture
async def cluster(redis_url: str, postgres_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    recorder = Recorder()
    await recorder.start()
    c = Cluster(redis_url, recorder, tmp_path, env={"DATABASE_URL": postgres_url}, brain="person")
    try:
        yield c
    finally:
        await asyncio.to_thread(c.stop)
        await recorder.stop()


async def _news(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> dict[str, Any]:
    """The next event on the console's socket (skipping the answers to pings). One deadline
    for the whole wait: `receive`'s own timeout starts again at each heartbeat."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"the console socket closed: {msg}")
            if msg.data != "pong":
                return dict(msg.json())


async def test_agent_on_one_process_sees_and_answers_a_customer_of_another(
    cluster: Cluster, postgres_url: str
) -> None:
    a = cluster.spawn("serve")  # the agent's process: no worker
    b = cluster.spawn("serve", "--worker")  # the customer's webhook and the turn
    await cluster.wait_ready()
    db = Database(postgres_url, migrate=False)  # the processes migrated it
    async with db:
        await SqlAgents(db).add("ann", "agent", "ann-password")

    base_a, base_b = f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"
    # A jar that keeps cookies of an IP address (cookies do not tell ports apart: B gets it too).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        r = await http.post(f"{base_a}/api/signin", json={"name": "ann", "password": "ann-pw"})
        assert r.status == 401
        r = await http.post(
            f"{base_a}/api/signin", json={"name": "ann", "password": "ann-password"}
        )
        assert r.status == 200, await r.text()
        csrf = {"X-CSRF-Token": (await r.json())["csrf"]}
        async with http.ws_connect(f"{base_a}/console/ws", headers={"Origin": base_a}) as ws:
            await deliver(http, b.port, payload("p1", "c1", "I want a person"))
            news = await _news(ws, 60)
            assert news["type"] in ("queue", "message"), news
            cid = news["conversation"]
            await until(
                lambda: "passing you to a person" in cluster.recorder.texts("c1"),
                60,
                "the bot's handoff reply",
                cluster,
            )
            # Process A shows the waiting customer, from the shared PostgreSQL.
            queue = await (await http.get(f"{base_a}/api/conversations")).json()
            assert [c["id"] for c in queue["conversations"]] == [cid]
            assert queue["conversations"][0]["state"] == "waiting"

            # The customer writes again through B; A's socket hears of it over Redis.
            await deliver(http, b.port, payload("p2", "c1", "my order is A1B2C3"))
            async with asyncio.timeout(60):
                while True:
                    news = await _news(ws, 60)
                    if news["type"] == "message" and news["conversation"] == cid:
                        url = f"{base_a}/api/conversations/{cid}"
                        seen = await (await http.get(url)).json()
                        if seen["messages"][-1]["text"] == "my order is A1B2C3":
                            break

            # The session cookie is the desk's (in PostgreSQL): it works on B as well.
            r = await http.post(
                f"{base_b}/api/conversations/{cid}/reply",
                json={"text": "Hi, Ann here."},
                headers=csrf,
            )
            assert r.status == 201, await r.text()
            news = await _news(ws, 60)
            assert news["conversation"] == cid
    assert cluster.recorder.texts("c1")[-1] == "Hi, Ann here."
    sent = cluster.recorder.sent[-1]
    assert sent.pid == b.pid  # sent by B, the process the reply was posted to
