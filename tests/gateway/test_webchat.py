"""The web chat socket: JSON frames in and out, buttons, bad input answered with an error frame
while the connection and the process stay up."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import aiohttp

from config.settings import load_settings
from core.models import Button
from gateway.dialogue_loader import load_dialogue
from tests.support.doubles import EchoDialogue, KeywordNlu


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next frame, past the typing notices and acknowledgements (tested on their own)."""
    while True:
        frame: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), 5)
        if not frame.get("typing") and "ack" not in frame:
            return frame


def replies_sent(services: Any) -> int:
    value = services.metrics.registry.get_sample_value(
        "gateway_messages_out_total", {"channel": "webchat"}
    )
    return int(value or 0)


async def new_session(client: Any) -> str:
    """A session token the server issued (a page's first visit)."""
    ws = await client.ws_connect("/chat/ws")
    token: str = (await receive(ws))["session"]
    await ws.close()
    return token


async def test_text_and_button_frames_get_replies(gateway_factory: Any) -> None:
    dialogue = EchoDialogue(buttons=(Button(label="Track my order", payload="/order_status"),))
    async with gateway_factory(nlu=KeywordNlu(), dialogue=dialogue) as (client, _):
        ws = await client.ws_connect("/chat/ws")
        hello = await receive(ws)
        assert set(hello) == {"session", "history", "welcome"} and hello["history"] == []
        await ws.send_json({"text": "hi there"})
        reply = await receive(ws)
        assert reply == {
            "text": "#1 hi there",
            "buttons": [{"label": "Track my order", "payload": "/order_status"}],
            "at": reply["at"],
            "seq": 2,  # the visitor's message is 1
        }
        await ws.send_json({"payload": "/order_status", "label": "Track my order"})
        assert (await receive(ws))["text"] == "#2 /order_status"
        await ws.close()


async def test_bad_frames_get_errors_and_the_socket_stays_up(gateway_factory: Any) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, s):
        ws = await client.ws_connect("/chat/ws")
        session = (await receive(ws))["session"]
        bad: list[tuple[Any, str]] = [
            ("{not json", "not JSON"),
            ("[1, 2]", "JSON object"),
            ('{"text": "   "}', "empty message"),
            ('{"text": 42}', 'needs "text"'),
            ('{"payload": ""}', "payload must be"),
            ('{"text": "' + "x" * 1_000_000 + '"}', "too long"),
            (b"\xff\xfe{", "not valid UTF-8"),
            ("[" * 5000 + "]" * 5000, "not JSON"),
        ]
        for frame, expected in bad:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            reply = await receive(ws)
            assert expected in reply["error"], (frame[:40], reply)
        assert await s.storage.queue.depth() == 0
        await ws.send_json({"text": "still here?"})
        assert (await receive(ws))["text"] == "#1 still here?"
        # A second visitor is not affected by the first one's mistakes.
        other = await client.ws_connect("/chat/ws")
        assert (await receive(other))["session"] != session
        await other.send_json({"text": "hello"})
        assert (await receive(other))["text"] == "#1 hello"


async def test_reply_waits_for_a_reconnect(gateway_factory: Any) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue(delay=0.2)) as (client, s):
        ws = await client.ws_connect("/chat/ws")
        token = (await receive(ws))["session"]
        await ws.send_json({"text": "are you there"})
        await ws.close()  # the visitor reloads the page before the answer
        # Reconnect only once the answer has gone out with no socket to take it (not after a
        # guess at how long the turn takes): it must then be held for the session.
        deadline = asyncio.get_running_loop().time() + 10
        while not replies_sent(s):
            assert asyncio.get_running_loop().time() < deadline, "the turn never answered"
            await asyncio.sleep(0.02)
        ws = await client.ws_connect(f"/chat/ws?session={token}")
        hello = await receive(ws)
        assert hello["session"] == token
        assert [(e["from"], e["text"]) for e in hello["history"]] == [
            ("user", "are you there"),
            ("bot", "#1 are you there"),
        ]


async def test_chat_page_is_served(gateway_factory: Any) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, _):
        r = await client.get("/chat")
        assert r.status == 200 and "/chat/static/chat.js" in await r.text()
        r = await client.get("/chat/static/chat.js")
        assert r.status == 200 and "WebSocket" in await r.text()
        r = await client.get("/", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/chat"


async def test_invalid_utf8_text_frame_closes_that_socket_only(gateway_factory: Any) -> None:
    """RFC 6455 (8.1) makes invalid UTF-8 in a text frame fail the connection: it is closed with
    1007 and a reason; the process, other sockets and the conversation carry on (the page
    reconnects by itself)."""
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, s):
        other = await client.ws_connect("/chat/ws")
        await receive(other)
        token = await new_session(client)
        reader, writer = await asyncio.open_connection(client.host, client.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /chat/ws?session={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        payload, mask = b"\xff\xfe{", os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        await writer.drain()
        data = b""
        while b"\x88" not in data:  # the session frame first, then the close frame
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk, "connection ended without a close frame"
            data += chunk
        close = data[data.index(b"\x88") :]
        assert int.from_bytes(close[2:4], "big") == 1007
        writer.close()
        await writer.wait_closed()
        assert await s.storage.queue.depth() == 0
        await other.send_json({"text": "unaffected"})
        assert (await receive(other))["text"] == "#1 unaffected"
        again = await client.ws_connect(f"/chat/ws?session={token}")
        assert (await receive(again))["session"] == token
        await again.send_json({"text": "hello again"})
        assert (await receive(again))["text"] == "#1 hello again"


async def test_an_id_the_browser_picks_is_scoped_to_its_session(gateway_factory: Any) -> None:
    """Two visitors whose pages number their messages alike are both answered."""
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, _):
        for visitor in ("one", "two"):
            ws = await client.ws_connect("/chat/ws")
            await receive(ws)
            await ws.send_json({"text": f"hi from {visitor}", "id": "message-0001"})
            assert (await receive(ws))["text"] == f"#1 hi from {visitor}"
            await ws.close()


async def test_a_lone_surrogate_escape_is_answered_not_a_failed_turn(gateway_factory: Any) -> None:
    """JSON may carry "\\ud800" (valid JSON, not valid Unicode): the message is answered with
    U+FFFD in its place instead of failing every write of the event."""
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, s):
        ws = await client.ws_connect("/chat/ws")
        await receive(ws)
        await ws.send_str('{"text": "hi \\ud800 there"}')
        assert (await receive(ws))["text"] == "#1 hi \ufffd there"
        assert await s.storage.queue.depth() == 0


async def test_the_welcome_offers_the_flows_menu(gateway_factory: Any, tmp_path: Any) -> None:
    flows = load_dialogue(load_settings(data_dir=tmp_path))
    async with gateway_factory(nlu=KeywordNlu(), dialogue=flows.dialogue) as (client, _):
        ws = await client.ws_connect("/chat/ws")
        hello = await receive(ws)
        assert (
            hello["welcome"]["text"] == "Hi! I'm the shop's assistant. Here's what I can help with:"
        )
        assert [b["label"] for b in hello["welcome"]["buttons"]] == [
            "Track an order",
            "Returns & refunds",
            "Cancel an order",
            "Reset my password",
            "Talk to a person",
        ]
        # A page that has the conversation up to a number gets no welcome, only what is new.
        again = await client.ws_connect(f"/chat/ws?session={hello['session']}&after=5")
        assert "welcome" not in await receive(again)


async def test_messages_are_acknowledged_typing_is_shown_and_replies_are_timed(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, _):
        ws = await client.ws_connect("/chat/ws")
        await receive(ws)
        await ws.send_json({"text": "hello", "id": "page-msg-1"})
        frames = [await asyncio.wait_for(ws.receive_json(), 5) for _ in range(3)]
        assert frames[0] == {"ack": "page-msg-1"}
        assert frames[1] == {"typing": True}
        assert frames[2]["text"] == "#1 hello" and frames[2]["at"] > 1.7e9
        # The same message again (a page that reconnected before the ack): acknowledged, not
        # answered twice.
        await ws.send_json({"text": "hello", "id": "page-msg-1"})
        assert await asyncio.wait_for(ws.receive_json(), 5) == {"ack": "page-msg-1"}
        await ws.send_json({"text": "next", "id": "page-msg-2"})
        assert (await receive(ws))["text"] == "#2 next"
