"""The web chat page in real headless Chromium: type, see the reply, press a button."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.models import Button
from tests.support.doubles import EchoDialogue, KeywordNlu

pytestmark = pytest.mark.browser


async def test_visitor_types_and_presses_a_button(
    gateway_factory: Any, browser: Any, tmp_path: Path
) -> None:
    dialogue = EchoDialogue(buttons=(Button(label="Track my order", payload="/order_status"),))
    async with gateway_factory(nlu=KeywordNlu(), dialogue=dialogue) as (client, _):
        page = await browser.new_page()
        await page.goto(str(client.make_url("/chat")))
        await page.wait_for_selector("#status.online", timeout=10_000)
        await page.fill("#text", "hello bot")
        await page.press("#text", "Enter")
        await page.wait_for_selector("li.msg.bot", timeout=10_000)
        assert (await page.locator("li.msg.user").first.text_content()) == "hello bot"
        assert "#1 hello bot" in (await page.locator("li.msg.bot").first.text_content() or "")
        await page.click("li.msg.bot .buttons button:text('Track my order')")
        # Locators, not wait_for_function: the page's CSP forbids eval, which string predicates
        # need (and the test proves the page works under its own policy).
        await page.locator("li.msg.bot").nth(1).wait_for(timeout=10_000)
        assert await page.locator("li.msg.bot").count() == 2
        assert "#2 /order_status" in (await page.locator("li.msg.bot").nth(1).text_content() or "")
        assert await page.locator("li.msg.bot").first.locator("button").is_disabled()
        await page.screenshot(path=str(tmp_path / "webchat.png"))
        assert (tmp_path / "webchat.png").stat().st_size > 1000


async def test_order_status_with_the_real_bot(
    gateway_factory: Any, browser: Any, real_brain: Any
) -> None:
    async with gateway_factory(nlu=real_brain.nlu, dialogue=real_brain.dialogue) as (client, _):
        page = await browser.new_page()
        await page.goto(str(client.make_url("/chat")))
        await page.wait_for_selector("#status.online", timeout=10_000)
        bots = page.locator("li.msg.bot")
        await page.fill("#text", "where is my order")
        await page.press("#text", "Enter")
        await bots.first.wait_for(timeout=15_000)
        assert "order number" in (await bots.last.text_content() or "").lower()
        await page.fill("#text", "A1B2C3")
        await page.press("#text", "Enter")
        await page.locator("li.msg.bot", has_text="shipped").first.wait_for(timeout=15_000)
