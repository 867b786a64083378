"""The console's JSON API: sign-in, roles and CSRF on every call, the queue, replies on the
customer's channel (refusals shown with the reason, nothing lost), claim, assign, notes, hand
back and resolve, search."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from core.errors import SendRefused
from core.handoff import State
from core.models import ConversationRef, Inbound, Sender
from gateway.services import Services
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.handoff import PersonDialogue

_n = iter(range(1_000_000))


async def say(services: Services, chat: str, text: str) -> None:
    inbound = Inbound(
        event_id=f"e{next(_n)}",
        conversation=ConversationRef(channel="test", chat_id=chat),
        sender=Sender(id=chat, name=f"Customer {chat}"),
        text=text,
    )
    assert services.engine is not None
    done = services.engine.expect(inbound)
    await services.storage.queue.put(inbound)
    await done


async def sign_in(client: TestClient[Any, Any], name: str, password: str) -> dict[str, str]:
    """A fresh cookie jar per agent is the test client's one jar: returns the CSRF header."""
    r = await client.post("/api/signin", json={"name": name, "password": password})
    assert r.status == 200, await r.text()
    return {"X-CSRF-Token": (await r.json())["csrf"]}


async def test_the_whole_desk_through_the_api(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=PersonDialogue(), channels={"test": recording_channel}
    ) as (client, services):
        agents = services.desk.agents
        ann = await agents.add("ann", "agent", "ann-password")
        await agents.add("bob", "agent", "bob-password")
        root = await agents.add("root", "admin", "root-password")
        # Nothing without a session; the two wrong answers alike.
        assert (await client.get("/api/conversations")).status == 401
        wrong = await client.post("/api/signin", json={"name": "ann", "password": "nope"})
        unknown = await client.post("/api/signin", json={"name": "zed", "password": "nope"})
        assert wrong.status == unknown.status == 401
        assert await wrong.json() == await unknown.json() == {"error": "wrong name or password"}
        form = await client.post("/api/signin", data={"name": "ann", "password": "ann-password"})
        assert form.status == 403

        await say(services, "c1", "hello")
        await say(services, "c1", "I want a person")
        await say(services, "c2", "a person please")
        csrf = await sign_in(client, "ann", "ann-password")
        queue = (await (await client.get("/api/conversations")).json())["conversations"]
        assert [c["key"] for c in queue] == ["test:c1", "test:c2"]  # oldest first
        assert queue[0]["state"] == "waiting" and queue[0]["waited_s"] >= 0
        assert queue[0]["customer"]["name"] == "Customer c1" and queue[0]["intent"] == "human"
        c1, c2 = queue[0]["id"], queue[1]["id"]

        # A change without the CSRF token is refused and changes nothing.
        r = await client.post(f"/api/conversations/{c1}/reply", json={"text": "hi"})
        assert r.status == 403 and recording_channel.texts("c1")[-1] != "hi"
        r = await client.post(
            f"/api/conversations/{c1}/reply", json={"text": "Hi, Ann here <b>!</b>"}, headers=csrf
        )
        assert r.status == 201, await r.text()
        assert recording_channel.texts("c1")[-1] == "Hi, Ann here <b>!</b>"
        seen = await (await client.get(f"/api/conversations/{c1}")).json()
        assert seen["conversation"]["state"] == "agent" and seen["conversation"]["holder"] == "ann"
        assert seen["messages"][-1]["author"] == "agent" and seen["messages"][-1]["agent"] == "ann"
        assert [t["to"] for t in seen["transitions"]] == ["waiting", "agent"]

        # The customer's next message reaches the agent; the bot says nothing.
        sent_before = len(recording_channel.texts("c1"))
        await say(services, "c1", "thanks, my order is A1")
        seen = await (await client.get(f"/api/conversations/{c1}")).json()
        assert seen["messages"][-1]["text"] == "thanks, my order is A1"
        assert len(recording_channel.texts("c1")) == sent_before

        # Bob may not answer Ann's conversation, nor assign it; he is told who holds it.
        client.session.cookie_jar.clear()
        bob = await sign_in(client, "bob", "bob-password")
        r = await client.post(f"/api/conversations/{c1}/reply", json={"text": "me"}, headers=bob)
        assert r.status == 409 and (await r.json())["holder"] == "ann"
        assert "ann has this conversation" in (await r.json())["error"]
        r = await client.post(f"/api/conversations/{c1}/claim", headers=bob)
        assert r.status == 409
        r = await client.post(f"/api/conversations/{c1}/assign", json={"agent": "bob"}, headers=bob)
        assert r.status == 403
        r = await client.post(
            f"/api/conversations/{c2}/notes", json={"text": "<i>VIP</i>"}, headers=bob
        )
        assert r.status == 201
        # A refused send is shown with the channel's reason and kept.
        recording_channel.fail_next.append(SendRefused("bot was blocked by the user"))
        r = await client.post(
            f"/api/conversations/{c2}/reply", json={"text": "hello c2"}, headers=bob
        )
        assert r.status == 502
        body = await r.json()
        assert (
            body["reason"] == "bot was blocked by the user"
            and body["message"]["status"] == "failed"
        )
        seen = await (await client.get(f"/api/conversations/{c2}")).json()
        assert (seen["messages"][-1]["text"], seen["messages"][-1]["status"]) == (
            "hello c2",
            "failed",
        )
        assert seen["notes"][0]["text"] == "<i>VIP</i>" and seen["notes"][0]["agent"] == "bob"

        # An admin with a token (no cookie, no CSRF) assigns c1 to bob.
        client.session.cookie_jar.clear()
        token, _ = await agents.start_session(root.id, "token", None)
        auth = {"Authorization": f"Bearer {token}"}
        r = await client.post(
            f"/api/conversations/{c1}/assign", json={"agent": "bob"}, headers=auth
        )
        assert r.status == 200 and (await r.json())["holder"] == "bob"
        assert (await client.get("/api/me", headers={"Authorization": "Bearer nope"})).status == 401
        # A token is not a cookie.
        client.session.cookie_jar.update_cookies({"console_session": token})
        assert (await client.get("/api/me")).status == 401
        client.session.cookie_jar.clear()

        # Hand back: the bot answers again, once, in order.
        r = await client.post(f"/api/conversations/{c1}/handback", headers=auth)
        assert r.status == 200 and (await r.json())["changed"]
        again = await client.post(f"/api/conversations/{c1}/handback", headers=auth)
        assert (await again.json())["changed"] is False
        deadline = time.monotonic() + 10
        while recording_channel.texts("c1")[-1] != "bot again" and time.monotonic() < deadline:
            await say(services, "c9", "tick")  # a turn of another conversation passes the time
        assert recording_channel.texts("c1")[-1] == "bot again"
        await say(services, "c1", "where is my order")
        assert recording_channel.texts("c1")[-1] == "echo where is my order"
        assert recording_channel.texts("c1").count("bot again") == 1
        conv = await services.desk.conversations.get(c1)
        assert conv is not None and conv.state == State.BOT

        # Resolve c2; search finds both by channel and by customer.
        r = await client.post(f"/api/conversations/{c2}/resolve", headers=auth)
        assert (await r.json())["state"] == "resolved"
        assert (await (await client.get("/api/conversations", headers=auth)).json())[
            "conversations"
        ] == []
        found = await (
            await client.get("/api/conversations?channel=test&q=customer%20c", headers=auth)
        ).json()
        assert {c["key"] for c in found["conversations"]} >= {"test:c1", "test:c2"}
        bad = await client.get("/api/conversations?since=yesterday", headers=auth)
        assert bad.status == 400
        assert ann.name == "ann"


async def test_sign_in_slows_down_after_failures(gateway_factory: Any) -> None:
    from tests.support.doubles import EchoDialogue

    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, services):
        await services.desk.agents.add("ann", "agent", "ann-password")
        times = []
        for _ in range(4):
            t0 = time.monotonic()
            r = await client.post("/api/signin", json={"name": "ann", "password": "x"})
            times.append(time.monotonic() - t0)
            assert r.status == 401
        assert times[3] >= 2.0 and max(times[:3]) < 2.0
        # The right password still works (no lock-out of the agent).
        assert (
            await client.post("/api/signin", json={"name": "ann", "password": "ann-password"})
        ).status == 200


async def test_agents_command_adds_with_a_password_from_stdin(
    tmp_path: Any, monkeypatch: Any
) -> None:
    import asyncio
    import io

    from config.settings import load_settings
    from gateway.cli import main
    from gateway.desk import build_desk

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert await asyncio.to_thread(main, ["agents", "add", "carol", "--role", "admin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert await asyncio.to_thread(main, ["agents", "add", "dave"]) == 2
    async with build_desk(load_settings(data_dir=tmp_path)) as desk:
        carol = await desk.agents.verify("carol", "a-long-password")
        assert carol is not None and carol.role == "admin"
        assert await desk.agents.get("dave") is None
