"""The insights page in real Chromium: an admin signs in, opens insights from the console,
picks the days of a known set of turns and sees the figures and the charts drawn with them,
per week and per channel, at desktop and phone width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gateway.console.test_insights_api import record_known
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.handoff import PersonDialogue

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).parents[3] / "docs" / "insights.png"
BLUE = (47, 111, 237)
"""The first series' colour: bars drawn in it prove the canvas shows the data."""

DRAWN = """([id, rgb]) => {
  const canvas = document.querySelector('#' + id + ' canvas');
  const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (Math.abs(px[i] - rgb[0]) < 40 && Math.abs(px[i + 1] - rgb[1]) < 40
        && Math.abs(px[i + 2] - rgb[2]) < 40 && px[i + 3] > 100) n++;
  }
  return n;
}"""


async def chart(page: Any, name: str) -> dict[str, Any]:
    return await page.evaluate(  # type: ignore[no-any-return]
        "(id) => { const n = document.getElementById(id);"
        " return {labels: n.labels, data: n.chart.data.slice(1)}; }",
        "chart-" + name,
    )


async def loaded(page: Any, times: int) -> None:
    await page.wait_for_function(
        "(n) => Number(document.body.dataset.loaded || 0) >= n", arg=times, timeout=10_000
    )


async def test_an_admin_sees_the_insights_drawn(
    gateway_factory: Any, browser: Any, recording_channel: RecordingChannel, tmp_path: Path
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=PersonDialogue(), channels={"test": recording_channel}
    ) as (client, services):
        await record_known(services)
        base = str(client.make_url(""))
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.location["url"]))
        await page.goto(base + "/console")
        await page.fill("#name", "root")
        await page.fill("#password", "root-password")
        await page.click("#signin button[type=submit]")
        await page.locator("#who", has_text="root").wait_for(timeout=10_000)
        errors.clear()  # the console asked who was signed in before anyone was (401)
        await page.click("#nav-insights")
        await loaded(page, 1)
        await page.fill("#since", "2025-12-06")
        await page.fill("#until", "2025-12-07")
        await page.click("#filters button[type=submit]")
        await page.locator("#k-turns", has_text="8").wait_for(timeout=10_000)

        tiles = {
            k: await page.locator("#k-" + k).text_content()
            for k in ("conversations", "containment", "fallback", "clarification", "handoff")
        }
        assert tiles == {
            "conversations": "4",
            "containment": "50%",
            "fallback": "12.5%",
            "clarification": "12.5%",
            "handoff": "25%",
        }
        assert await page.locator("#k-satisfaction").text_content() == "50%"
        assert await page.locator("#k-feedback").text_content() == "1 helped · 1 did not"
        assert await page.locator("#k-latency").text_content() == "0.5 / 1.2 s"

        assert await chart(page, "intents") == {
            "labels": ["order_status", "human"],
            "data": [[7, 1]],
        }
        assert await chart(page, "confidence") == {
            "labels": [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)],
            "data": [[0, 0, 1, 1, 0, 1, 0, 1, 1, 3]],
        }
        assert await chart(page, "reasons") == {
            "labels": ["fallback", "support"],
            "data": [[1, 1]],
        }
        assert await chart(page, "rates") == {
            "labels": ["2025-12-06", "2025-12-07"],
            "data": [[50, 50], [25, 0], [25, 0], [25, 25], [100, 0]],
        }
        assert await chart(page, "volume") == {
            "labels": ["2025-12-06", "2025-12-07"],
            "data": [[4, 4]],
        }
        assert (await chart(page, "latency"))["data"] == [[0.4, 0.5], [0.8, 1.2]]
        for name in ("intents", "confidence", "reasons", "volume", "rates"):
            assert await page.evaluate(DRAWN, ["chart-" + name, BLUE]) > 200, name
        rows = await page.locator("#by-channel tbody tr").all_text_contents()
        assert len(rows) == 2 and rows[0].startswith("telegram42") and "webchat" in rows[1]
        csv_link = await page.get_attribute("#export-csv", "href")
        assert csv_link == "/api/insights/export?format=csv&since=2025-12-06&until=2025-12-08"
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Per week, then one channel: the charts follow.
        await page.select_option("#period", "week")
        await loaded(page, 3)
        assert await chart(page, "volume") == {"labels": ["2025-12-01"], "data": [[8]]}
        await page.select_option("#channel", "webchat")
        await loaded(page, 4)
        assert await page.locator("#k-turns").text_content() == "4"
        assert await page.locator("#k-satisfaction").text_content() == "0%"
        assert await chart(page, "reasons") == {"labels": ["support"], "data": [[1]]}
        assert "channel=webchat" in (await page.get_attribute("#export-jsonl", "href") or "")

        # A phone: nothing wider than the screen, every chart as wide as it can be.
        phone = await ctx.new_page()
        await phone.set_viewport_size({"width": 390, "height": 844})
        await phone.goto(page.url)
        await loaded(phone, 1)
        assert await phone.locator("#k-turns").text_content() == "4"
        wide = await phone.evaluate("() => document.documentElement.scrollWidth")
        assert wide <= 390
        widths = await phone.evaluate(
            "() => [...document.querySelectorAll('.chart canvas')]"
            ".map((c) => c.getBoundingClientRect().width)"
        )
        assert len(widths) == 6 and all(300 <= w <= 390 for w in widths), widths
        await phone.screenshot(path=str(tmp_path / "insights-phone.png"), full_page=True)
        assert [e for e in errors if not e.endswith("/favicon.ico")] == []
    assert SCREENSHOT.stat().st_size > 10_000
