"""The review inbox end to end in real Chromium, with the default bot's flows (and the example
matching double of the intent model, so which turns are misunderstood does not depend on a
training run): customers chat on the web, some are misunderstood; a reviewer opens the inbox,
relabels the misunderstood turns and adds a new example; the labels land in flows/reviewed.yml,
which training reads; live precision shows beside the release's held-out figures. An agent is
turned away."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from core.nlu import scores
from core.nlu.data import OUT_OF_SCOPE, Example, load_data, load_flows_dir
from core.nlu.gate import Evaluation, score
from core.review import trainfile
from core.review.inbox import InboxItem, InboxQuery
from core.sql.reviews import SqlReviews
from gateway.dialogue_loader import load_dialogue
from tests.support.flows_nlu import ExampleNlu

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).parents[3] / "docs" / "review.png"
REPLIES = "li.msg.bot:not(.welcome):not(.typing)"
MEANT = {
    "my parcel went to the neighbour's cat": "order_status",
    "zxqv blorf": None,
    "the lamp arrived in pieces, I want my cash": "damaged_item",
    "can u tell me when ur open": "opening_hours",
    "my order ships to the old flat, fix it": "change_address",
}
"""What each customer meant (None: nothing), in the order they write."""


async def customer_says(browser: Any, base: str, text: str) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(base + "/chat")
    await page.wait_for_selector("#status.online", timeout=10_000)
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await page.locator(REPLIES).first.wait_for(timeout=20_000)
    await page.context.close()


async def signed_in(browser: Any, base: str, name: str, password: str, **ctx: Any) -> Any:
    """A page of the console, signed in as `name`."""
    page = await (await browser.new_context(**ctx)).new_page()
    await page.goto(base + "/console")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#signin button[type=submit]")
    await page.locator("#live.online").wait_for(timeout=10_000)
    return page


async def held_out(nlu: ExampleNlu, examples: list[Example]) -> Evaluation:
    """The figures `core.nlu.gate.evaluate` gives a model, for the double."""
    scoped = [e for e in examples if e.intent != OUT_OF_SCOPE]
    guessed = [(await nlu.parse(e.text)).intent for e in scoped]
    # The double knows out_of_scope as an intent; a trained model never gives it.
    return score(scoped, [None if g == OUT_OF_SCOPE else g for g in guessed])


async def label(
    page: Any, item: InboxItem, button: str, done: str, pick: str | None = None
) -> None:
    card = page.locator(f'li.turn[data-turn="{item.turn_id}"]')
    if pick is not None:
        await card.locator("select.pick").select_option(pick)
    await card.locator(button).click()
    await card.locator(".outcome", has_text=done).wait_for(timeout=10_000)


async def test_a_reviewer_relabels_misunderstood_turns(
    gateway_factory: Any, browser: Any, flows_copy: Path, tmp_path: Path
) -> None:
    # A release as `train` leaves it: MODEL_DIR on it, its held-out figures beside it (here
    # those of the model that answers, the double, measured on the held-out split).
    settings = load_settings(flows_dir=flows_copy, data_dir=tmp_path, model_dir=tmp_path / "model")
    bundle = load_dialogue(settings)
    nlu = ExampleNlu.from_dir(flows_copy, bundle.extractor)
    release = tmp_path / "models" / "20261206T230000Z"
    release.mkdir(parents=True)
    scores.write(release, await held_out(nlu, load_data(flows_copy / "heldout")))
    settings.model_dir.symlink_to(release)
    async with gateway_factory(
        nlu=nlu,
        dialogue=bundle.dialogue,
        flows_dir=flows_copy,
        data_dir=tmp_path,
        model_dir=settings.model_dir,
    ) as (client, services):
        base = str(client.make_url(""))
        for text in MEANT:
            await customer_says(browser, base, text)
        reviews = SqlReviews(services.desk.db)
        listed = await reviews.inbox(InboxQuery(below=services.settings.review_below))
        assert len(listed) >= 3, [(i.text, i.intent, i.confidence, i.outcome) for i in listed]
        assert {i.text for i in listed} <= set(MEANT)
        await services.desk.agents.add("rey", "reviewer", "rey-password")
        await services.desk.agents.add("ann", "agent", "ann-password")

        # An agent is turned away.
        agent = await signed_in(browser, base, "ann", "ann-password")
        assert await agent.locator("#nav-review").is_hidden()
        refused = await agent.goto(base + "/console/review")
        assert refused is not None and refused.status == 403
        assert "may not review" in (await agent.content())

        # The reviewer signs in on the console and follows the link to the inbox.
        viewport = {"width": 1360, "height": 900}
        page = await signed_in(browser, base, "rey", "rey-password", viewport=viewport)
        await page.click("#nav-review")
        cards = page.locator("#turns li.turn")
        await cards.nth(len(listed) - 1).wait_for(timeout=10_000)
        assert await cards.count() == len(listed)
        shown = [await cards.nth(i).locator(".said").text_content() for i in range(len(listed))]
        assert shown == [i.text for i in listed]  # newest first
        offline = await page.locator("#offline").text_content() or ""
        assert "held-out accuracy" in offline and release.name in offline

        # Each misunderstood turn relabelled with what the customer meant (or marked right when
        # the model had it), the nonsense ignored, and a new example for the first customer's.
        by_text = {i.text: i for i in listed}
        wanted = set()
        for item in listed:
            meant = MEANT[item.text]
            if meant is None:
                await label(page, item, "button.ignore", "Ignored")
            elif item.intent == meant:
                await label(page, item, "button.right", "Marked right")
                wanted.add((meant, item.text, "right", "rey"))
            elif item.text != "my parcel went to the neighbour's cat":
                await label(page, item, "button.relabel", f"Relabelled as {meant}", pick=meant)
                wanted.add((meant, item.text, "relabel", "rey"))
        await page.mouse.move(400, 300)
        await page.mouse.wheel(0, -10_000)
        await page.locator("#filters").wait_for(timeout=10_000)
        await page.screenshot(path=str(SCREENSHOT))
        parcel = by_text.get("my parcel went to the neighbour's cat")
        if parcel is not None:
            card = page.locator(f'li.turn[data-turn="{parcel.turn_id}"]')
            await card.locator("button.more").click()
            await card.locator("form.new input").fill("my parcel was left with the neighbours")
            await label(page, parcel, "form.new button", "New example for order_status",
                        pick="order_status")  # fmt: skip
            wanted.add(("order_status", "my parcel was left with the neighbours", "example", "rey"))

        # Live precision: the model's intent for a relabelled turn was wrong.
        wrong = next(i for i in listed if i.intent and MEANT[i.text] not in (None, i.intent))
        row = page.locator(f'#precision tr[data-intent="{wrong.intent}"]')
        assert (await row.locator("td.live").text_content()) != "—"
        assert (await row.locator("td.live").text_content()) != "100%"

        # Nothing is left to review; filtering to the reviewed turns shows them all.
        await page.click("#filters button[type=submit]")
        await page.locator("#none").wait_for(timeout=10_000)
        await page.select_option("#f-status", "done")
        await page.click("#filters button[type=submit]")
        await page.locator("#count", has_text=f"Turns ({len(listed)})").wait_for(timeout=10_000)

        # The labels are in the training data, with who and when; training reads them.
        entries = trainfile.read(flows_copy / trainfile.FILE_NAME)
        assert {(e.intent, e.text, e.label, e.by) for e in entries} == wanted
        examples = load_flows_dir(flows_copy)
        assert all(Example(text, intent) in examples for intent, text, _, _ in wanted)
        assert SCREENSHOT.stat().st_size > 10_000
