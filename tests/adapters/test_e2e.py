"""End to end on every channel: a signed webhook in, the product's real intent model and flows,
the bot's replies observed at the fake platform API, over a two-turn order-status flow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.cases import load_cases
from tests.adapters.contract import ChannelCase, build_settings, running_gateway
from tests.support.fakes import FakePlatform, Sent

CASES = load_cases()


async def wait_for(
    fake: FakePlatform, after: int, found: Callable[[str], bool], timeout: float = 30.0
) -> list[Sent]:
    """The messages past the first `after` once one of them satisfies `found`."""
    deadline = time.monotonic() + timeout
    while True:
        new = fake.sent()[after:]
        if any(found(s.text) for s in new):
            return new
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching reply at the platform; got {[s.text for s in new]}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_order_status_over_two_turns(case: ChannelCase, real_brain: Any, tmp_path: Path):
    async with case.fake() as fake:
        settings = build_settings(case, fake, tmp_path)
        async with running_gateway(
            settings, nlu=real_brain.nlu, dialogue=real_brain.dialogue
        ) as gw:
            status, _ = await gw.post(
                case, case.sign(case.message("where is my order", chat=case.chat, event="e2e-1"))
            )
            assert 200 <= status < 300
            first = await wait_for(fake, 0, lambda t: "order number" in t.lower())
            assert all(s.chat_id == case.chat for s in first)
            seen = len(fake.sent())
            status, _ = await gw.post(
                case, case.sign(case.message("A1B2C3", chat=case.chat, event="e2e-2"))
            )
            assert 200 <= status < 300
            second = await wait_for(fake, seen, lambda t: "A1B2C3" in t and "shipped" in t)
            assert all(s.chat_id == case.chat for s in second)
