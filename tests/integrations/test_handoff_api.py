"""POST /api/handoff/{key}/release hands a conversation back to the bot, in order, by token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from core.errors import StoreUnavailable
from core.models import ConversationRef, Inbound, Sender
from core.session import Session
from gateway.app import create_app
from gateway.dialogue_loader import load_dialogue
from gateway.services import build_services
from gateway.stories import StoryChannel
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.flows_nlu import FLOWS, ExampleNlu


async def _post_with_raw_header(client: TestClient[Any, Any], path: str, header: bytes) -> int:
    """A POST with a header written as bytes (one that is not UTF-8, which aiohttp's client
    cannot send): the status code."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        % (path.encode(), header)
    )
    status = int((await reader.readline()).split()[1])
    await reader.read()
    writer.close()
    await writer.wait_closed()
    return status


async def test_release_by_api(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, flows_dir=FLOWS, handoff_api_token="t0ken", redis_url=None
    )
    bundle = load_dialogue(settings)
    channel = StoryChannel()
    services = build_services(
        settings,
        nlu=ExampleNlu.from_dir(FLOWS, bundle.extractor),
        dialogue=bundle.dialogue,
        with_worker=True,
        extra_channels={channel.name: channel},
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
        await services.backends.queue.put(inbound)
        await done
        session = await services.backends.store.load(conv.key)
        assert session is not None and session.handoff
        url = f"/api/handoff/{conv.key}/release"
        assert (await client.post(url)).status == 403
        bad = {"Authorization": "Bearer nope"}
        assert (await client.post(url, headers=bad)).status == 403
        assert await _post_with_raw_header(client, url, b"Authorization: Bearer \xff") == 403
        good = {"Authorization": "Bearer t0ken"}
        assert (await client.post("/api/handoff/story:404/release", headers=good)).status == 404
        resp = await client.post(url, headers=good)
        assert resp.status == 202 and (await resp.json()) == {"released": True}
        for _ in range(100):
            session = await services.backends.store.load(conv.key)
            if session is not None and not session.handoff:
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
    services = build_services(
        settings, nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False
    )
    conv = ConversationRef(channel="story", chat_id="7")
    session = Session.new(conv)
    session.handoff, session.revision = True, 4
    await services.backends.store.save(session)
    client = TestClient(TestServer(create_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        url, good = f"/api/handoff/{conv.key}/release", {"Authorization": "Bearer t0ken"}
        for _ in range(3):  # the agent's tool retries
            assert (await client.post(url, headers=good)).status == 202
        assert await services.backends.queue.depth() == 1

        async def down(key: str) -> None:
            raise StoreUnavailable("redis unreachable")

        services.backends.store.load = down  # type: ignore[method-assign]
        resp = await client.post(url, headers=good)
        assert resp.status == 503 and "unavailable" in (await resp.json())["error"]
    finally:
        await client.close()
