"""HTTP actions declared in YAML, the demo shop over HTTP, and the handoff webhook, against real
loopback servers."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from core.dialogue import load_bot
from core.errors import ActionError
from core.ports import HandoffRecord
from gateway.commands.shop import build_shop_app
from integrations.handoff import WebhookHandoff
from integrations.registry import ActionRegistry
from integrations.shop import Shop, register_shop


class Backend:
    """Answers from a script of statuses and records what it was sent."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.seen: list[dict[str, Any]] = []
        self.keys: list[str | None] = []
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.seen.append(
            {"method": request.method, "path": request.path, "body": body,
             "auth": request.headers.get("Authorization")}
        )  # fmt: skip
        self.keys.append(request.headers.get("Idempotency-Key"))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status == 200, "path": request.path}, status=status)


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Backend, str]]:
    b = Backend()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", b.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield b, str(server.make_url("")).rstrip("/")
    await server.close()


def http_registry(tmp_path: Path, base: str, timeout: float = 2.0) -> ActionRegistry:
    (tmp_path / "a.yml").write_text(
        textwrap.dedent(
            f"""\
            actions:
              tickets.create:
                method: POST
                url: "{base}/tickets/{{{{ queue }}}}"
                headers: {{Authorization: "Bearer {{{{ env.TICKETS_TOKEN }}}}"}}
                json: {{subject: "Order {{{{ order_id }}}}", tags: ["bot", "{{{{ queue }}}}"]}}
                secrets: [TICKETS_TOKEN]
                timeout: {timeout}
                retries: 2
            """
        )
    )
    bot = load_bot(tmp_path, set())
    registry = ActionRegistry(backoff_base=0.001)
    registry.declare_http(bot.actions)
    return registry


async def test_yaml_http_action_renders_request_with_secret_from_env(
    tmp_path: Path, backend: tuple[Backend, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    b, base = backend
    monkeypatch.setenv("TICKETS_TOKEN", "s3cret")
    registry = http_registry(tmp_path, base)
    result = await registry.call("tickets.create", {"queue": "refunds", "order_id": "A1B2C3"})
    assert result == {"ok": True, "path": "/tickets/refunds"}
    assert b.seen == [
        {
            "method": "POST",
            "path": "/tickets/refunds",
            "body": {"subject": "Order A1B2C3", "tags": ["bot", "refunds"]},
            "auth": "Bearer s3cret",
        }
    ]
    await registry.close()


async def test_a_keyed_call_sends_its_idempotency_key_on_every_attempt(
    tmp_path: Path, backend: tuple[Backend, str]
) -> None:
    b, base = backend
    registry = http_registry(tmp_path, base)
    b.statuses = [502, 200]
    await registry.call("tickets.create", {"queue": "q", "order_id": "1"}, key="web:1:e7:1")
    await registry.call("tickets.create", {"queue": "q", "order_id": "1"})
    assert b.keys == ["web:1:e7:1", "web:1:e7:1", None]
    await registry.close()


async def test_5xx_is_retried_4xx_is_not(tmp_path: Path, backend: tuple[Backend, str]) -> None:
    b, base = backend
    registry = http_registry(tmp_path, base)
    b.statuses = [502, 503, 200]
    assert (await registry.call("tickets.create", {"queue": "q", "order_id": "1"}))["ok"]
    assert len(b.seen) == 3
    b.statuses = [404, 200]
    with pytest.raises(ActionError, match="HTTP 404"):
        await registry.call("tickets.create", {"queue": "q", "order_id": "1"})
    assert len(b.seen) == 4
    await registry.close()


async def test_timeouts_are_retried_then_fail(tmp_path: Path, backend: tuple[Backend, str]) -> None:
    b, base = backend
    b.delay = 0.5
    registry = http_registry(tmp_path, base, timeout=0.05)
    with pytest.raises(ActionError, match="timed out"):
        await registry.call("tickets.create", {"queue": "q", "order_id": "1"})
    # The call has returned, so it makes no more attempts; the ones it made were sent before it
    # gave up on each, and may only be read by the server a moment later: wait for those.
    deadline = time.monotonic() + 5
    while len(b.seen) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(b.seen) == 3
    await registry.close()


@pytest.fixture
async def shop_url() -> AsyncIterator[tuple[Shop, str]]:
    shop = Shop()
    server = TestServer(build_shop_app(shop), host="127.0.0.1")
    await server.start_server()
    yield shop, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.mark.parametrize("over_http", [False, True])
async def test_shop_actions_in_process_and_over_http(
    over_http: bool, shop_url: tuple[Shop, str]
) -> None:
    shop, url = shop_url
    registry = ActionRegistry()
    register_shop(registry, shop, url if over_http else None)
    found = await registry.call("shop.order_status", {"order_id": "a1b2c3"})
    assert found["found"] and found["status"] == "shipped" and found["order_id"] == "A1B2C3"
    assert (await registry.call("shop.order_status", {"order_id": "Z9Y8X7"}))["status"] == (
        "processing"
    )
    assert await registry.call("shop.order_status", {"order_id": "QQQ111"}) == {
        "found": False,
        "order_id": "QQQ111",
    }
    reset = await registry.call("shop.password_reset", {"email": "Jane@Example.com"})
    assert reset["request_id"] == "PR-0001" and shop.resets[0]["email"] == "jane@example.com"
    ticket = await registry.call("shop.refund", {"order_id": "A1B2C3", "reason": "too big"})
    assert ticket["ticket_id"] == "RF-0001" and shop.tickets[0]["reason"] == "too big"
    with pytest.raises(ActionError):
        await registry.call("shop.refund", {"order_id": "QQQ111", "reason": "x"})
    with pytest.raises(ActionError):
        await registry.call("shop.password_reset", {"email": ""})
    await registry.close()


@pytest.mark.parametrize("over_http", [False, True])
async def test_shop_cancels_and_redirects_only_orders_not_yet_shipped(
    over_http: bool, shop_url: tuple[Shop, str]
) -> None:
    shop, url = shop_url
    registry = ActionRegistry()
    register_shop(registry, shop, url if over_http else None)
    try:
        moved = await registry.call(
            "shop.change_address", {"order_id": "z9y8x7", "address": " 1 New St, Springfield "}
        )
        assert moved == {"order_id": "Z9Y8X7", "changed": True, "address": "1 New St, Springfield"}
        assert shop.orders["Z9Y8X7"].address == "1 New St, Springfield"
        done = await registry.call("shop.cancel_order", {"order_id": "z9y8x7"})
        assert done == {"order_id": "Z9Y8X7", "cancelled": True, "status": "cancelled"}
        assert shop.orders["Z9Y8X7"].status == "cancelled"
        again = await registry.call("shop.cancel_order", {"order_id": "Z9Y8X7"})
        assert again == done  # cancelling twice answers as the first time did
        late = await registry.call("shop.cancel_order", {"order_id": "A1B2C3"})
        assert late == {"order_id": "A1B2C3", "cancelled": False, "status": "shipped"}
        late = await registry.call(
            "shop.change_address", {"order_id": "K4M5N6", "address": "2 Old Rd"}
        )
        assert late == {"order_id": "K4M5N6", "changed": False, "status": "delivered"}
        assert shop.orders["A1B2C3"].status == "shipped" and shop.orders["K4M5N6"].address == ""
        for name, args in (
            ("shop.cancel_order", {"order_id": "QQQ111"}),
            ("shop.change_address", {"order_id": "QQQ111", "address": "3 Any St"}),
            ("shop.change_address", {"order_id": "Z9Y8X7", "address": ""}),
        ):
            with pytest.raises(ActionError):
                await registry.call(name, args)
    finally:
        await registry.close()


async def test_the_shop_api_refuses_an_address_change_without_an_address(
    shop_url: tuple[Shop, str],
) -> None:
    shop, url = shop_url
    async with ClientSession() as http:
        async with http.post(f"{url}/orders/Z9Y8X7/address", json={"address": "  "}) as r:
            assert r.status == 400
        async with http.post(f"{url}/orders/QQQ111/cancel", json={}) as r:
            assert r.status == 404
    assert shop.orders["Z9Y8X7"].address == "" and shop.orders["Z9Y8X7"].status == "processing"


async def test_handoff_webhook_gets_the_record(backend: tuple[Backend, str]) -> None:
    b, base = backend
    target = WebhookHandoff(f"{base}/handoff")
    record = HandoffRecord(
        conversation="web:1",
        channel="web",
        queue="support",
        intent="human",
        confidence=0.9,
        slots={"order_id": "A1B2C3"},
        transcript=[{"user": "hi", "intent": "greet", "bot": ["Hello"]}],
        at=1.0,
    )
    await target.notify(record)
    await target.close()
    assert b.seen[0]["path"] == "/handoff"
    assert b.seen[0]["body"]["slots"] == {"order_id": "A1B2C3"}
    assert b.seen[0]["body"]["transcript"][0]["user"] == "hi"
