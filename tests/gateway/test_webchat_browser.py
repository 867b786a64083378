"""The web chat page in real headless Chromium: type, see the reply, press a button."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from core.models import Button
from tests.support.doubles import EchoDialogue, KeywordNlu

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
REPLIES = "li.msg.bot:not(.welcome):not(.typing)"
CLOCK = re.compile(r"^\d{1,2}:\d{2}")
SCREENSHOT = Path(__file__).parents[2] / "docs" / "webchat.png"


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
        replies = page.locator(REPLIES)
        await replies.first.wait_for(timeout=10_000)
        assert (await page.locator("li.msg.user .text").first.text_content()) == "hello bot"
        assert "#1 hello bot" in (await replies.first.text_content() or "")
        await page.click(f"{REPLIES} .buttons button:text('Track my order')")
        # Locators, not wait_for_function: the page's CSP forbids eval, which string predicates
        # need (and the test proves the page works under its own policy).
        await replies.nth(1).wait_for(timeout=10_000)
        assert await replies.count() == 2
        assert "#2 /order_status" in (await replies.nth(1).text_content() or "")
        assert await replies.first.locator("button").is_disabled()
        await page.screenshot(path=str(tmp_path / "webchat.png"))
        assert (tmp_path / "webchat.png").stat().st_size > 1000


async def test_order_status_with_the_real_bot(
    gateway_factory: Any, browser: Any, real_brain: Any
) -> None:
    async with gateway_factory(nlu=real_brain.nlu, dialogue=real_brain.dialogue) as (client, _):
        page = await browser.new_page(viewport={"width": 900, "height": 640})
        await page.goto(str(client.make_url("/chat")))
        await page.wait_for_selector("#status.online", timeout=10_000)
        bots = page.locator(REPLIES)
        await page.fill("#text", "where is my order")
        await page.press("#text", "Enter")
        await bots.first.wait_for(timeout=15_000)
        assert "order number" in (await bots.last.text_content() or "").lower()
        await page.fill("#text", "A1B2C3")
        await page.press("#text", "Enter")
        await page.locator("li.msg.bot", has_text="shipped").first.wait_for(timeout=15_000)
        await page.screenshot(path=str(SCREENSHOT))  # the README's picture of the page


class MenuDialogue(EchoDialogue):
    """The echo, with a menu like the flows' (what the welcome offers)."""

    def menu(self) -> tuple[Button, ...]:
        return (
            Button(label="Track an order", payload="/order_status"),
            Button(label="Returns & refunds", payload="/refund"),
        )


async def in_view(page: Any, selector: str) -> None:
    """`selector`'s last match lies inside the conversation's visible area, and the page's."""
    log = await page.locator("#log").bounding_box()
    box = await page.locator(selector).last.bounding_box()
    viewport = page.viewport_size
    assert box is not None and log is not None
    assert log["y"] - 1 <= box["y"] and box["y"] + box["height"] <= log["y"] + log["height"] + 1, (
        selector,
        box,
        log,
    )
    assert box["y"] + box["height"] <= viewport["height"], (selector, box, viewport)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_welcome_typing_times_scrolling_and_the_conversation_after_a_reload(
    gateway_factory: Any, browser: Any, size: dict[str, int], tmp_path: Path
) -> None:
    dialogue = MenuDialogue(
        delay=0.6,
        buttons=(
            Button(label="Yes", payload="/affirm"),
            Button(label="No", payload="/deny"),
            Button(label="Talk to a person", payload="/human"),
        ),
    )
    async with gateway_factory(nlu=KeywordNlu(), dialogue=dialogue) as (client, _):
        page = await browser.new_page(viewport=size)
        await page.goto(str(client.make_url("/chat")))
        await page.wait_for_selector("#status.online", timeout=10_000)
        welcome = page.locator("li.msg.bot.welcome")
        assert "what I can help with" in (await welcome.text_content() or "")
        assert await welcome.locator("button").all_text_contents() == [
            "Track an order",
            "Returns & refunds",
        ]
        replies = page.locator(REPLIES)
        for n in range(1, 9):  # more than a screen's worth
            await page.fill("#text", f"message number {n}")
            await page.press("#text", "Enter")
            if n == 1:  # the turn takes a while: the dots show, then give way to the reply
                await page.locator("li.typing").wait_for(timeout=10_000)
            await replies.nth(n - 1).wait_for(timeout=10_000)
            # The newest reply and its buttons are in view once they are added.
            await in_view(page, f"{REPLIES} .buttons button")
        assert await page.locator("li.typing").count() == 0
        assert "#8 message number 8" in (await replies.last.text_content() or "")
        assert CLOCK.match(await replies.last.locator("time").text_content() or "")
        assert CLOCK.match(await page.locator("li.msg.user time").last.text_content() or "")
        await page.screenshot(path=str(tmp_path / "webchat.png"))

        await page.reload()
        await page.wait_for_selector("#status.online", timeout=10_000)
        # The conversation again, from the server, after the welcome; the newest in view.
        await replies.nth(7).wait_for(timeout=10_000)
        assert await replies.count() == 8 and await page.locator("li.msg.user").count() == 8
        assert await page.locator("li.msg").first.get_attribute("class") == "msg bot welcome"
        assert "message number 1" in (await page.locator("li.msg.user").first.text_content() or "")
        await in_view(page, f"{REPLIES} .buttons button")
        assert not await replies.last.locator("button").first.is_disabled()
        assert await replies.first.locator("button").first.is_disabled()  # old choices
        await replies.last.locator("button", has_text="No").click()
        await replies.nth(8).wait_for(timeout=10_000)
        assert "#9 /deny" in (await replies.last.text_content() or "")


async def test_a_message_sent_while_reconnecting_is_marked_until_the_server_has_it(
    gateway_factory: Any, browser: Any
) -> None:
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue()) as (client, _):
        page = await browser.new_page(viewport=PHONE)
        sockets: list[Any] = []
        let_through = asyncio.Event()

        async def route(ws: Any) -> None:
            sockets.append(ws)
            if len(sockets) > 1:  # the reconnection waits until the test says
                await let_through.wait()
            ws.connect_to_server()

        await page.route_web_socket(re.compile(r".*/chat/ws.*"), route)
        await page.goto(str(client.make_url("/chat")))
        await page.wait_for_selector("#status.online", timeout=10_000)
        await page.fill("#text", "before")
        await page.press("#text", "Enter")
        await page.locator(REPLIES).first.wait_for(timeout=10_000)
        assert await page.locator("li.msg.user.pending").count() == 0

        await sockets[0].close()  # the connection drops (a restart, a train's tunnel)
        await page.locator("#status", has_text="reconnecting").wait_for(timeout=10_000)
        await page.fill("#text", "sent while reconnecting")
        await page.press("#text", "Enter")
        pending = page.locator("li.msg.user.pending", has_text="sent while reconnecting")
        await pending.wait_for(timeout=5_000)
        assert "sending…" in (await pending.text_content() or "")

        let_through.set()
        await page.locator(REPLIES, has_text="#2 sent while reconnecting").wait_for(timeout=15_000)
        assert await page.locator("li.msg.user.pending").count() == 0
        assert "sending" not in (await page.locator("li.msg.user").last.text_content() or "")
        assert await page.locator(REPLIES).count() == 2  # each answered once


async def test_the_shop_sets_the_title_and_colours(gateway_factory: Any, browser: Any) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        webchat_title="Acme <Help> & Returns",
        webchat_color="#FFCC00",
    ) as (client, _):
        page = await browser.new_page(viewport=PHONE)
        await page.goto(str(client.make_url("/chat")))
        await page.wait_for_selector("#status.online", timeout=10_000)
        assert await page.title() == "Acme <Help> & Returns"  # as text, never markup
        assert await page.locator("h1").text_content() == "Acme <Help> & Returns"
        await page.fill("#text", "hi")
        await page.press("#text", "Enter")
        await page.locator(REPLIES).first.wait_for(timeout=10_000)
        user = page.locator("li.msg.user").first
        # A light accent gets dark text on it (the page's policy allows no inline style:
        # the colours come from a style sheet made from the settings).
        await expect(user).to_have_css("background-color", "rgb(255, 204, 0)")
        await expect(user).to_have_css("color", "rgb(29, 36, 48)")
