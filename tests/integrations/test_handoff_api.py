"""POST /api/handoff/{key}/release hands a conversation back to the bot, in order, by token."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from core.errors import StoreUnavailable
from core.models import ConversationRef, Inbound, Sender
from core.session import Session
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.dialogue_loader import load_dialogue
from gateway.stories import StoryChannel
from tests.support._raw_http import post_raw
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.flows_nlu import FLOWS, ExampleNlu


async def test_release_by_api(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, flows_dir=FLOWS, handoff_api_token="t0ken", redis_url=None
    )
    bundle = load_dialogue(settings)
    channel = StoryChannel()
    services = build_gateway(
        settings,
        "serve",
        nlu=ExampleNlu.from_dir(FLOWS, bundle.extractor),
        dialogue=bundle.dialogue,
        with_worker=True,
        channels={channel.name: channel},
    )
    app = create_app(services)  # mounts the release API
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        conv = ConversationRef(channel="story", chat_id="42")
        inbound = Inbound(
            event_id="e1", conversation=conv, sender=Sender(id="u"), text="talk to a person"
        )
        assert services.engine is not None
        done = services.engine.expect(inbound)
        await services.storage.queue.put(inbound)
        await done
        session = await services.storage.store.load(conv.key)
        assert session is not None and session.handoff
        url = f"/api/handoff/{conv.key}/release"
        assert (await client.post(url)).status == 403
        bad = {"Authorization": "Bearer nope"}
        assert (await client.post(url, headers=bad)).status == 403
        host, port = client.server.host, client.server.port
        assert host is not None and port is not None
        raw = {"Authorization": "Bearer \udcff"}  # the byte 0xff: not UTF-8
        assert await post_raw(host, port, url, raw) == 403
        good = {"Authorization": "Bearer t0ken"}
        assert (await client.post("/api/handoff/story:404/release", headers=good)).status == 404
        resp = await client.post(url, headers=good)
        assert resp.status == 202 and (await resp.json()) == {"released": True}
        for _ in range(500):  # the session is saved before the reply goes out: wait for both
            session = await services.storage.store.load(conv.key)
            if session is not None and not session.handoff and "bot again" in channel.sent[-1].text:
                break
            await asyncio.sleep(0.02)
        assert session is not None and not session.handoff
        assert "bot again" in channel.sent[-1].text
        again = await client.post(url, headers=good)
        assert (await again.json()) == {"released": False, "reason": "not with a person"}
    finally:
        await client.close()
        await bundle.stop()


async def test_a_repeated_release_is_queued_once_and_an_outage_is_503(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, handoff_api_token="t0ken", redis_url=None)
    services = build_gateway(
        settings, "serve", nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False
    )
    conv = ConversationRef(channel="story", chat_id="7")
    session = Session.new(conv)
    session.handoff, session.revision = True, 4
    await services.storage.store.save(session)
    client = TestClient(TestServer(create_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        url, good = f"/api/handoff/{conv.key}/release", {"Authorization": "Bearer t0ken"}
        for _ in range(3):  # the agent's tool retries
            assert (await client.post(url, headers=good)).status == 202
        assert await services.storage.queue.depth() == 1

        async def down(key: str) -> None:
            raise StoreUnavailable("redis unreachable")

        services.storage.store.load = down  # type: ignore[method-assign]
        resp = await client.post(url, headers=good)
        assert resp.status == 503 and "unavailable" in (await resp.json())["error"]
    finally:
        await client.close()
