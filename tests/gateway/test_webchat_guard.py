"""The web chat's guard, through the real socket: sessions are the server's (a chosen or forged
id starts a new conversation instead of continuing someone's), new sessions and messages are
limited per client address, and the optional proof of work is asked before the first message."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from core.limits import MemoryLimits
from gateway.webchat_guard import WebChatGuard
from gateway.webchat_tokens import SessionTokens
from tests.support.doubles import EchoDialogue, KeywordNlu


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next frame, past the typing notices and acknowledgements (tested on their own)."""
    while True:
        frame: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), 5)
        if not frame.get("typing") and "ack" not in frame:
            return frame


async def test_a_session_id_the_client_picks_does_not_continue_anothers_conversation(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, _):
        victim = await client.ws_connect("/chat/ws")
        token = (await receive(victim))["session"]
        await victim.send_json({"text": "reset my password"})
        assert (await receive(victim))["text"] == "#1 reset my password"
        session_id = token.split(".")[0]  # the part that shows in logs and handoff records
        for chosen in (session_id, f"{session_id}.v.{'A' * 32}", token[:-2] + "xx"):
            other = await client.ws_connect(f"/chat/ws?session={chosen}")
            issued = (await receive(other))["session"]
            assert issued.split(".")[0] != session_id
            await other.send_json({"text": "what was I doing"})
            assert (await receive(other))["text"] == "#1 what was I doing"  # a new conversation
            await other.close()
        # The visitor's own token still continues its own conversation, and no frame of the
        # others reached it.
        again = await client.ws_connect(f"/chat/ws?session={token}")
        assert (await receive(again))["session"] == token
        await again.send_json({"text": "still me"})
        assert (await receive(again))["text"] == "#2 still me"


async def test_new_sessions_per_address_are_limited_and_told_when_to_come_back(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), webchat_sessions_per_address=3
    ) as (client, s):
        tokens = []
        for _ in range(3):
            ws = await client.ws_connect("/chat/ws")
            tokens.append((await receive(ws))["session"])
            await ws.close()
        ws = await client.ws_connect("/chat/ws")
        refused = await receive(ws)
        assert "Too many new chats" in refused["error"] and 0 < refused["retry_after"] <= 60
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1013  # try again later
        # A visitor who already has its session is never refused.
        back = await client.ws_connect(f"/chat/ws?session={tokens[0]}")
        assert (await receive(back))["session"] == tokens[0]
        await back.send_json({"text": "hello"})
        assert (await receive(back))["text"] == "#1 hello"
        sample = s.metrics.registry.get_sample_value(
            "gateway_webhooks_rejected_total", {"channel": "webchat", "reason": "sessions_limited"}
        )
        assert sample == 1


async def test_messages_per_address_are_limited_across_its_sessions(gateway_factory: Any) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), webchat_messages_per_address=4
    ) as (client, s):
        sockets = [await client.ws_connect("/chat/ws") for _ in range(2)]
        for ws in sockets:
            await receive(ws)
        for i in range(4):
            ws = sockets[i % 2]
            await ws.send_json({"text": f"message {i}"})
            assert (await receive(ws))["text"].endswith(f"message {i}")
        await sockets[0].send_json({"text": "one more"})
        refused = await receive(sockets[0])
        assert "Too many messages" in refused["error"] and refused["retry_after"] > 0
        assert await s.storage.queue.depth() == 0


def solve(seed: str, bits: int) -> str:
    return next(
        str(n)
        for n in itertools.count()
        if int.from_bytes(hashlib.sha256(f"{seed}:{n}".encode()).digest()[:4], "big") >> (32 - bits)
        == 0
    )


async def test_the_proof_of_work_is_asked_before_the_first_message(gateway_factory: Any) -> None:
    dialogue = EchoDialogue()
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=dialogue, webchat_challenge="pow", webchat_pow_bits=10
    ) as (client, s):
        ws = await client.ws_connect("/chat/ws")
        hello = await receive(ws)
        challenge = hello["challenge"]
        assert challenge["kind"] == "pow" and challenge["bits"] == 10
        assert challenge["seed"] == hello["session"].split(".")[0]
        await ws.send_json({"text": "let me in"})
        assert "still checking" in (await receive(ws))["error"]
        right = solve(challenge["seed"], 10)
        await ws.send_json({"pow": "0" if right != "0" else "1"})
        assert "challenge" in await receive(ws)
        await ws.send_json({"pow": right})
        solved = await receive(ws)
        assert list(solved) == ["session"] and solved["session"] != hello["session"]
        await ws.send_json({"text": "now?"})
        assert (await receive(ws))["text"] == "#1 now?"
        assert dialogue.seen == [(f"webchat:{challenge['seed']}", "now?", None)]
        await ws.close()
        # The solved token needs no new challenge; the unsolved one still does.
        again = await client.ws_connect(f"/chat/ws?session={solved['session']}")
        assert "challenge" not in await receive(again)
        old = await client.ws_connect(f"/chat/ws?session={hello['session']}")
        assert "challenge" in await receive(old)
        assert await s.storage.queue.depth() == 0


def guard(*proxies: str) -> WebChatGuard:
    return WebChatGuard(SessionTokens(b"k" * 32), MemoryLimits(), trusted_proxies=proxies)


def request(peer: str, forwarded: str | None = None) -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    transport = _Transport(peer)
    return make_mocked_request("GET", "/chat/ws", headers=headers, transport=transport)


class _Transport:
    def __init__(self, peer: str):
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.peer, 1234) if name == "peername" else default


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        ("203.0.113.7", None, (), "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", (), "203.0.113.7"),  # not from a proxy: ignored
        ("10.0.0.2", "198.51.100.1", ("10.0.0.0/8",), "198.51.100.1"),
        # A client's own X-Forwarded-For is to the left of what the proxies add.
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.9", ("10.0.0.0/8",), "198.51.100.1"),
        ("2001:db8:1:2:3:4:5:6", None, (), "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", None, (), "203.0.113.7"),
    ],
)
def test_the_client_address_limits_count(
    peer: str, forwarded: str | None, proxies: tuple[str, ...], expected: str
) -> None:
    assert guard(*proxies).address(request(peer, forwarded)) == expected


@pytest.mark.browser
async def test_the_page_solves_the_challenge_by_itself(
    gateway_factory: Any, browser: Any, tmp_path: Path
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=EchoDialogue(), webchat_challenge="pow", webchat_pow_bits=14
    ) as (client, _):
        page = await browser.new_page()
        await page.goto(str(client.make_url("/chat")))
        await page.fill("#text", "typed before the check ended")
        await page.press("#text", "Enter")
        replies = page.locator("li.msg.bot:not(.welcome):not(.typing)")
        await replies.first.wait_for(timeout=15_000)
        assert "#1 typed before the check ended" in (await replies.first.text_content() or "")
        assert await page.locator("li.msg.error").count() == 0
        await page.reload()  # the solved token is kept: no second challenge, same conversation
        await page.wait_for_selector("#status.online", timeout=10_000)
        await page.fill("#text", "after a reload")
        await page.press("#text", "Enter")
        await replies.filter(has_text="#2 after a reload").wait_for(timeout=10_000)
        assert "#1 typed before the check ended" in (await replies.first.text_content() or "")
