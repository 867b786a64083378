"""The retrain button's API: admins only, with the CSRF token; broken training data refused
with file:line and a candidate worse than the live model refused with the gate's reasons, the
live model untouched either way; a second press while one runs is told so."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from tests.gateway.console.conftest import Bot, retrain_console
from tests.gateway.console.test_api import sign_in

TRAINING = 900.0
"""Seconds a tiny retrain may take on a machine busy with other tests."""


async def verdict(client: TestClient[Any, Any], timeout: float = TRAINING) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await (await client.get("/api/retrain")).json()
        if status["state"] != "running":
            return dict(status)
        await asyncio.sleep(0.5)
    raise AssertionError(f"the retrain did not end: {status}")


def corrupt(intents: Any) -> None:
    """Each intent's examples under the next intent's name: a candidate wrong on everything."""
    doc = yaml.safe_load(intents.read_text())
    names = [n for n in doc["intents"] if n != "out_of_scope"]
    moved = dict(zip(names, names[1:] + names[:1], strict=True))
    doc["intents"] = {moved.get(n, n): body for n, body in doc["intents"].items()}
    intents.write_text(yaml.safe_dump(doc))


@pytest.mark.timeout(2 * TRAINING)
async def test_retrain_is_for_admins_and_refuses_what_would_make_things_worse(
    gateway_factory: Any, bot: Bot
) -> None:
    async with retrain_console(gateway_factory, bot) as client:
        assert (await client.get("/api/retrain")).status == 401
        csrf = await sign_in(client, "ann", "ann-password")
        assert (await client.get("/api/retrain")).status == 403
        assert (await client.post("/api/retrain", headers=csrf)).status == 403

        csrf = await sign_in(client, "root", "root-password")
        idle = await (await client.get("/api/retrain")).json()
        assert idle["state"] == "idle"
        assert (await client.post("/api/retrain")).status == 403, "no CSRF token, no retrain"
        assert (await client.get("/api/retrain")).status == 200

        # Broken training data: refused with file:line before anything is trained.
        intents = bot.flows / "intents.yml"
        good = intents.read_text()
        intents.write_text("intents:\n  greet:\n    examples: [hi, hello\n  bye: [bye]\n")
        r = await client.post("/api/retrain", headers=csrf)
        assert r.status == 202, await r.text()
        assert (await r.json())["state"] == "running" and (await r.json())["by"] == "root"
        broken = await verdict(client)
        assert broken["state"] == "refused", broken
        assert f"{intents}:" in broken["reasons"][0] and "not valid YAML" in broken["reasons"][0]
        assert bot.releases.current() == bot.live

        # A candidate trained on shuffled labels: refused by the gate, with why.
        intents.write_text(good)
        corrupt(intents)
        r = await client.post("/api/retrain", headers=csrf)
        assert r.status == 202, await r.text()
        again = await client.post("/api/retrain", headers=csrf)
        assert again.status == 409
        body = await again.json()
        assert "running" in body["error"] and body["status"]["state"] == "running"
        worse = await verdict(client)
        assert worse["state"] == "refused", worse
        reasons = "\n".join(worse["reasons"])
        assert "accuracy fell" in reasons and "recall fell" in reasons, reasons
        assert worse["candidate_accuracy"] < worse["live_accuracy"]
        assert bot.releases.current() == bot.live, "the live model stays"
