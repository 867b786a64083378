"""The console end to end in real Chromium: a web chat customer and a Telegram customer (fake
Bot API) ask for a person (the first after the shop's API failed); an agent signs in, sees both
queued with their context (the failed call too), answers each on their own channel, sees the
next message arrive live, and hands one back to the bot."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.adapters.cases.telegram import CASE as TELEGRAM
from tests.adapters.cases.telegram import SECRET_TOKEN, text_update
from tests.support.doubles import KeywordNlu
from tests.support.fakes.telegram import FakeTelegram
from tests.support.handoff import SHOP_DOWN, PersonDialogue

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).parents[3] / "docs" / "console.png"
TG_CHAT = "1111111"


async def telegram_says(client: TestClient[Any, Any], text: str, n: int) -> None:
    body = text_update(text, chat=TG_CHAT, event=f"tg-{n}")
    r = await client.post(
        "/webhooks/telegram",
        data=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN,
        },
    )
    assert r.status == 200


async def telegram_got(fake: FakeTelegram, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m == "sendMessage" and p.get("text") == text for m, p in fake.calls):
            return
        await _tick()
    raise AssertionError(f"Telegram never got {text!r}: {[p.get('text') for _, p in fake.calls]}")


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.05)


async def test_two_customers_one_agent(
    gateway_factory: Any, browser: Any, fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(shop_down=True),
        **TELEGRAM.settings(fake_telegram),
    ) as (client, services):
        await services.desk.agents.add("ann", "agent", "ann-password")
        base = str(client.make_url(""))

        # The web chat customer asks about an order while the shop is down: a person is asked.
        customer = await (await browser.new_context()).new_page()
        await customer.goto(base + "/chat")
        await customer.wait_for_selector("#status.online", timeout=10_000)
        await customer.fill("#text", "where is my order?")
        await customer.press("#text", "Enter")
        await customer.locator("li.msg.bot", has_text="passing you to a person").wait_for(
            timeout=10_000
        )
        # The Telegram customer too.
        await telegram_says(client, "a person please <script>alert(1)</script>", 1)
        await telegram_got(fake_telegram, "passing you to a person")

        # The agent signs in and sees both, oldest first, with their context.
        agent_ctx = await browser.new_context(viewport={"width": 1280, "height": 760})
        agent = await agent_ctx.new_page()
        await agent.goto(base + "/console")
        await agent.fill("#name", "ann")
        await agent.fill("#password", "wrong")
        await agent.click("#signin button[type=submit]")
        await agent.locator("#signin-error", has_text="wrong name or password").wait_for(
            timeout=10_000
        )
        await agent.fill("#password", "ann-password")
        await agent.click("#signin button[type=submit]")
        await agent.locator("#live.online").wait_for(timeout=10_000)
        items = agent.locator("#queue li")
        await items.nth(1).wait_for(timeout=10_000)
        assert await items.count() == 2
        assert "webchat" in (await items.nth(0).text_content() or "")
        assert "telegram" in (await items.nth(1).text_content() or "")

        # Telegram first: its script is shown as text.
        await items.nth(1).click()
        await agent.locator("#transcript li", has_text="<script>alert(1)</script>").wait_for(
            timeout=10_000
        )
        card = await agent.locator("#card").text_content() or ""
        assert "human (97%)" in card and "telegram" in card and "support" in card
        assert "bot → waiting" in (await agent.locator("#history").text_content() or "")
        await agent.fill("#reply-text", "Hi, Ann here. Let me look.")
        await agent.click("#reply button")
        await telegram_got(fake_telegram, "Hi, Ann here. Let me look.")
        await agent.locator("#card", has_text="with ann").wait_for(timeout=10_000)

        # The web chat customer: answered in their chat, their next message shows up live.
        await agent.locator("#queue li", has_text="webchat").click()
        await agent.locator("#title", has_text="webchat").wait_for(timeout=10_000)
        # What the bot tried and what broke is on the card.
        await agent.locator("#card", has_text="orders.lookup in orders").wait_for(timeout=10_000)
        assert SHOP_DOWN in (await agent.locator("#card").text_content() or "")
        await agent.fill("#note-text", "Asked twice <b>already</b>")
        await agent.click("#note button")
        await agent.locator("#notes li", has_text="ann: Asked twice <b>already</b>").wait_for(
            timeout=10_000
        )
        await agent.fill("#reply-text", "Hello from Ann on the web")
        await agent.press("#reply-text", "Enter")
        await customer.locator("li.msg.bot", has_text="Hello from Ann on the web").wait_for(
            timeout=10_000
        )
        await customer.fill("#text", "thanks, it is order A1B2C3")
        await customer.press("#text", "Enter")
        await agent.locator("#transcript li", has_text="thanks, it is order A1B2C3").wait_for(
            timeout=10_000
        )
        await telegram_says(client, "still there?", 2)
        await agent.locator("#queue li", has_text="telegram").wait_for(timeout=10_000)
        await agent.screenshot(path=str(SCREENSHOT))

        # Hand back: the bot answers the web chat customer again.
        await agent.click("#handback")
        await customer.locator("li.msg.bot", has_text="bot again").wait_for(timeout=10_000)
        await customer.fill("#text", "where is my parcel")
        await customer.press("#text", "Enter")
        await customer.locator("li.msg.bot", has_text="echo where is my parcel").wait_for(
            timeout=10_000
        )
        await agent.locator("#queue li").nth(1).wait_for(state="detached", timeout=10_000)
        assert await agent.locator("#queue li").count() == 1

        # At phone width the same page still works (one column).
        await agent.set_viewport_size({"width": 390, "height": 844})
        await agent.screenshot(path=str(tmp_path / "console-phone.png"), full_page=True)
        assert (tmp_path / "console-phone.png").stat().st_size > 1000
        assert SCREENSHOT.stat().st_size > 10_000
