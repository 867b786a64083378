"""What the web chat's pages tell browsers (CSP, no framing, no sniffing), and the web chat
socket refused to pages of other origins."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway.security import CONTENT_SECURITY_POLICY
from tests.support.doubles import EchoDialogue, KeywordNlu


@pytest.mark.parametrize("path", ["/chat", "/chat/static/chat.js", "/chat/static/chat.css", "/"])
async def test_pages_and_their_files_carry_the_browser_headers(
    gateway_factory: Any, path: str
) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False) as (
        client,
        _s,
    ):
        r = await client.get(path, allow_redirects=False)
        assert r.status in (200, 302)
        assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_only_the_pages_own_files_are_served(gateway_factory: Any) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False) as (
        client,
        _s,
    ):
        for path in ("/chat/static/nope.js", "/chat/static/..%2Fapp.py", "/chat/static/"):
            assert (await client.get(path)).status == 404, path


async def open_socket(client: Any, origin: str | None) -> int:
    """The status of a WebSocket handshake from a page of `origin` (101 when it opened)."""
    headers = {"Origin": origin} if origin else {}
    try:
        ws = await client.ws_connect("/chat/ws", headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def test_the_socket_is_refused_to_another_sites_page(gateway_factory: Any) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False) as (
        client,
        s,
    ):
        own = f"http://{client.server.host}:{client.server.port}"
        assert await open_socket(client, "https://evil.example") == 403
        assert await open_socket(client, "null") == 403  # a sandboxed frame, a file
        assert await open_socket(client, own) == 101
        assert await open_socket(client, None) == 101  # no browser page behind it
        value = s.metrics.registry.get_sample_value(
            "gateway_webhooks_rejected_total", {"channel": "webchat", "reason": "origin"}
        )
        assert value == 2


async def test_the_allowed_origins_setting_names_the_pages(gateway_factory: Any) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        with_worker=False,
        webchat_allowed_origins="https://shop.example, https://www.shop.example",
    ) as (client, _s):
        own = f"http://{client.server.host}:{client.server.port}"
        assert await open_socket(client, "https://shop.example") == 101
        assert await open_socket(client, "https://www.shop.example/") == 101
        assert await open_socket(client, "https://shop.example.evil.example") == 403
        assert await open_socket(client, own) == 403  # the list replaces the default


async def test_behind_a_proxy_the_public_url_is_the_own_origin(gateway_factory: Any) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        with_worker=False,
        public_base_url="https://chat.shop.example",
    ) as (client, _s):
        assert await open_socket(client, "https://chat.shop.example") == 101
        assert await open_socket(client, "https://shop.example") == 403
