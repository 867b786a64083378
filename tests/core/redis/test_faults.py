"""Fault tests with real `serve` and `worker` processes on a real Redis: every message gets exactly
one reply, conversations stay in order, and the session state counts every turn once.

The double dialogue answers `#<turn number> <text>`; a backlog handled as one turn answers its
texts joined by newlines. So `check` can tell a lost message, a doubled one, a reordering and a
turn counted twice apart."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from core.redis.client import connect
from tests.core.redis.cluster import (
    Cluster,
    Recorder,
    deliver,
    drained,
    payload,
    post,
    until,
    wait_workers,
)
from tests.support.redis_server import RedisServer

PARTITIONS = 16


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    r = Recorder()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def clusters(recorder: Recorder, tmp_path: Path) -> AsyncIterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(redis_url: str, **env: str) -> Cluster:
        c = Cluster(redis_url, recorder, tmp_path, env=env)
        made.append(c)
        return c

    yield make
    for c in made:  # in a thread: the recorder must keep answering the workers that wind down
        await asyncio.to_thread(c.stop)


def tokens(replies: list[str]) -> tuple[list[int], list[str]]:
    """(turn numbers, message texts in reply order) from `#n text` replies."""
    turns, texts = [], []
    for r in replies:
        head, _, rest = r.partition(" ")
        turns.append(int(head.lstrip("#")))
        texts.extend(rest.split("\n"))
    return turns, texts


def check(recorder: Recorder, chat: str, expected: list[str]) -> None:
    turns, texts = tokens(recorder.texts(chat))
    assert texts == expected, f"{chat}: replies cover {texts}, expected {expected}"
    assert turns == list(range(1, len(turns) + 1)), f"{chat}: turn numbers {turns}"


def complete(recorder: Recorder, chats: dict[str, list[str]]) -> bool:
    return all(len(tokens(recorder.texts(c))[1]) >= len(m) for c, m in chats.items())


async def test_worker_killed_mid_turn_is_finished_by_another(
    clusters: Callable[..., Cluster], recorder: Recorder, redis_url: str
) -> None:
    c = clusters(redis_url, TURN_DELAY="2.0")
    c.spawn("serve")
    workers = {p.pid: p for p in (c.spawn("worker"), c.spawn("worker"))}
    await wait_workers(c)
    r = connect(redis_url)
    try:
        chat = "kill-1"
        part = zlib.crc32(f"probe:{chat}".encode()) % PARTITIONS
        async with aiohttp.ClientSession() as http:
            await deliver(http, c.serves()[0].port or 0, payload("k1", chat, "hello"))
            stream = f"gateway:q:{part}"
            deadline = time.monotonic() + 30
            while not (await r.xpending(stream, "workers"))["pending"]:
                assert time.monotonic() < deadline, "the entry was never taken"
                await asyncio.sleep(0.02)
            owner = (await r.xpending(stream, "workers"))["consumers"][0]["name"].decode()
            victim = workers[int(owner.rsplit("-", 2)[1])]
            assert recorder.texts(chat) == [], "the turn must still be running"
            victim.kill()
            await until(lambda: recorder.texts(chat), 60, "the reply after the kill", c)
            await deliver(http, c.serves()[0].port or 0, payload("k2", chat, "again"))
            await until(lambda: len(recorder.texts(chat)) >= 2, 60, "the second reply", c)
            await drained(c)
        assert recorder.texts(chat) == ["#1 hello", "#2 again"]
        assert {s.pid for s in recorder.sent} == {p for p in workers if p != victim.pid}
    finally:
        await r.aclose()


async def test_redis_restart_while_messages_flow(
    clusters: Callable[..., Cluster], recorder: Recorder, own_redis: RedisServer
) -> None:
    c = clusters(own_redis.url, MAX_ATTEMPTS="8", CLAIM_IDLE_MS="5000")
    c.spawn("serve")
    c.spawn("worker")
    c.spawn("worker")
    await wait_workers(c)
    port = c.serves()[0].port or 0
    chats = {f"rr-{i}": [f"m{j}" for j in range(12)] for i in range(5)}
    statuses: list[int] = []
    sent = 0

    async def conversation(http: aiohttp.ClientSession, chat: str, msgs: list[str]) -> None:
        nonlocal sent
        for m in msgs:
            await deliver(http, port, payload(f"{chat}-{m}", chat, m), statuses, within=90)
            sent += 1
            await asyncio.sleep(0.05)

    async def outage() -> None:
        while sent < 15:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(own_redis.restart, 2.0)

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(outage(), *(conversation(http, k, v) for k, v in chats.items()))
    assert 503 in statuses, "webhooks answer 503 while Redis is down"
    await until(lambda: complete(recorder, chats), 90, "every reply after the restart", c)
    await drained(c)
    for chat, msgs in chats.items():
        check(recorder, chat, msgs)


async def test_same_event_five_times_on_two_serves_gets_one_reply(
    clusters: Callable[..., Cluster], recorder: Recorder, redis_url: str
) -> None:
    c = clusters(redis_url)
    a, b = c.spawn("serve"), c.spawn("serve")
    c.spawn("worker")
    await c.wait_ready()
    body = payload("dup-1", "dup", "once")
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            *(post(http, (a if i % 2 else b).port or 0, body) for i in range(5))
        )
    assert [s for s, _ in results] == [200] * 5
    await until(lambda: recorder.texts("dup"), 60, "the reply", c)
    await drained(c)
    assert recorder.texts("dup") == ["#1 once"]


async def test_200_messages_20_conversations_2_serves_3_workers_in_order(
    clusters: Callable[..., Cluster], recorder: Recorder, redis_url: str
) -> None:
    c = clusters(redis_url, TURN_DELAY="0.02")
    serves = [c.spawn("serve"), c.spawn("serve")]
    for _ in range(3):
        c.spawn("worker")
    await wait_workers(c)
    chats = {f"ord-{i}": [f"m{j}" for j in range(10)] for i in range(20)}

    async def conversation(http: aiohttp.ClientSession, chat: str, msgs: list[str]) -> None:
        for j, m in enumerate(msgs):
            await deliver(http, serves[j % 2].port or 0, payload(f"{chat}-{m}", chat, m))

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(conversation(http, k, v) for k, v in chats.items()))
    await until(lambda: complete(recorder, chats), 90, "all 200 replies", c)
    await drained(c)
    for chat, msgs in chats.items():
        check(recorder, chat, msgs)
    assert len({s.pid for s in recorder.sent}) >= 2, "the workers shared the load"


async def test_web_chat_reply_crosses_from_worker_to_the_socket(
    clusters: Callable[..., Cluster], redis_url: str
) -> None:
    c = clusters(redis_url)
    serve = c.spawn("serve")
    c.spawn("worker")
    await c.wait_ready()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{serve.port}/chat/ws") as ws,
    ):
        hello = await ws.receive_json(timeout=10)
        assert "session" in hello
        await ws.send_str(json.dumps({"text": "over the relay"}))
        typing = await ws.receive_json(timeout=60)  # the worker started the turn
        frame = await ws.receive_json(timeout=60)
        assert typing == {"typing": True}
    assert frame["text"] == "#1 over the relay"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{serve.port}/chat/ws?session={hello['session']}") as ws,
    ):
        # A reload: the conversation, kept in Redis by the worker and the serve process.
        again = await ws.receive_json(timeout=10)
    said = [(e["from"], e["text"]) for e in again["history"]]
    assert said == [("user", "over the relay"), ("bot", "#1 over the relay")]
