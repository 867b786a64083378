"""The retrain button in real Chromium: an admin presses it, follows the candidate's training and
sees it deployed (the live model was worse); an agent is not offered the button."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gateway.console.conftest import Bot, retrain_console, worse_live_model
from tests.gateway.console.test_retrain_api import TRAINING

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).parents[3] / "docs" / "console-retrain.png"


async def signed_in(browser: Any, base: str, name: str, password: str) -> Any:
    page = await (await browser.new_context(viewport={"width": 1280, "height": 760})).new_page()
    await page.goto(base + "/console")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#signin button[type=submit]")
    await page.locator("#live.online").wait_for(timeout=10_000)
    return page


@pytest.mark.timeout(2 * TRAINING)
async def test_an_admin_retrains_and_sees_the_candidate_deployed(
    gateway_factory: Any, browser: Any, bot: Bot
) -> None:
    worse_live_model(bot)
    async with retrain_console(gateway_factory, bot) as client:
        base = str(client.make_url(""))

        agent = await signed_in(browser, base, "ann", "ann-password")
        await agent.locator("#who", has_text="ann (agent)").wait_for(timeout=10_000)
        assert await agent.locator("#retrain-start").count() == 0 or not (
            await agent.locator("#retrain-start").is_visible()
        )

        admin = await signed_in(browser, base, "root", "root-password")
        await admin.click("#retrain-start")
        await admin.locator("#retrain-state", has_text="Training a candidate").wait_for(
            timeout=10_000
        )
        assert await admin.locator("#retrain-start").is_disabled()
        done = admin.locator("#retrain-state[data-state=deployed]")
        await done.wait_for(timeout=TRAINING * 1000)
        said = await done.text_content() or ""
        assert said.startswith("Deployed: held-out accuracy") and "live model was" in said
        assert bot.releases.current() not in (None, bot.live)
        assert bot.releases.previous() == bot.live, "kept for a rollback"
        assert not await admin.locator("#retrain-start").is_disabled()
        await admin.screenshot(path=str(SCREENSHOT))
