"""Abuse limits on what visitors make the bot do, with the real flows behind the real web chat:
anonymous sessions asking for a person or for password resets are limited across sessions, and
every one of them still gets an answer that says what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from core.errors import ActionError, ActionRefused, StoreUnavailable
from core.limits import MemoryLimits
from core.models import ConversationRef
from core.ports import HandoffRecord
from core.session import Session
from gateway.dialogue_loader import load_dialogue
from integrations.guard import ActionGuard, GuardedHandoff, GuardSettings
from integrations.registry import ActionRegistry, CallPolicy
from integrations.shop import RESET, Shop
from tests.integrations.test_idempotency import Brain
from tests.support.flows_nlu import FLOWS, ExampleNlu

GatewayFactory = Any


async def visit(client: Any, frames: list[dict[str, Any]]) -> list[str]:
    """One anonymous visitor: a new session, `frames` sent one at a time, each answer's text
    (or the error that refused it) collected; an unanswered frame fails the test."""
    ws = await client.ws_connect("/chat/ws")
    hello = await asyncio.wait_for(ws.receive_json(), 10)
    if "error" in hello:
        await ws.close()
        return [hello["error"]]
    answers = []
    for frame in frames:
        await ws.send_json(frame)
        reply = await answer(ws)
        answers.append(reply.get("text") or reply["error"])
    await ws.close()
    return answers


async def answer(ws: Any) -> dict[str, Any]:
    """The next frame with the bot's text or an error, past acknowledgements and typing marks."""
    while True:
        frame: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), 10)
        if "text" in frame or "error" in frame:
            return frame


def bot(tmp_path: Path, shop: Shop | None = None, **settings: Any) -> tuple[Any, dict[str, Any]]:
    settings = {"flows_dir": FLOWS, "data_dir": tmp_path, **settings}
    bundle = load_dialogue(load_settings(**settings), shop=shop)
    return bundle, {"nlu": ExampleNlu.from_dir(FLOWS, bundle.extractor), **settings}


HUMAN = {"payload": "/human", "label": "Talk to a person"}


async def test_sixty_sessions_from_one_address_cannot_all_reach_the_helpdesk(
    gateway_factory: GatewayFactory, tmp_path: Path, helpdesk: tuple[list[dict[str, Any]], str]
) -> None:
    seen, url = helpdesk
    bundle, kw = bot(tmp_path, handoff_webhook_url=url)
    async with gateway_factory(dialogue=bundle.dialogue, **kw) as (client, _):
        answers = await asyncio.gather(*(visit(client, [HUMAN]) for _ in range(60)))
    await bundle.stop()
    texts = [a[0] for a in answers]
    handed = [t for t in texts if "passing you to a person" in t]
    refused = [t for t in texts if "Too many new chats" in t]
    assert len(handed) == 20 and len(refused) == 40, texts  # WEBCHAT_SESSIONS_PER_ADDRESS
    assert len(seen) == 20


async def test_sixty_sessions_from_many_addresses_create_the_allowed_handoffs(
    gateway_factory: GatewayFactory, tmp_path: Path, helpdesk: tuple[list[dict[str, Any]], str]
) -> None:
    """Sessions from as many addresses as an attacker has (no per-address limit here): the
    helpdesk still gets at most HANDOFF_RATE_LIMIT records a minute, and every visitor past it
    is told the team is busy instead of waiting for a person who was never asked."""
    seen, url = helpdesk
    bundle, kw = bot(
        tmp_path, handoff_webhook_url=url, handoff_rate_limit=5, webchat_sessions_per_address=0
    )
    async with gateway_factory(dialogue=bundle.dialogue, **kw) as (client, _):
        answers = await asyncio.gather(*(visit(client, [HUMAN]) for _ in range(60)))
    await bundle.stop()
    texts = [a[0] for a in answers]
    assert sum("passing you to a person" in t for t in texts) == 5
    busy = [t for t in texts if "can't take more requests right now" in t]
    assert len(busy) == 55 and all("try again in 1 minute" in t for t in busy)
    assert len(seen) == 5


async def test_forty_sessions_resetting_one_address_send_one_reset(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    shop = Shop()
    bundle, kw = bot(tmp_path, shop=shop, webchat_sessions_per_address=0)
    frames = [
        {"payload": "/password_reset", "label": "Reset my password"},
        {"text": "victim@example.com"},
    ]
    async with gateway_factory(dialogue=bundle.dialogue, **kw) as (client, _):
        answers = await asyncio.gather(*(visit(client, frames) for _ in range(40)))
    await bundle.stop()
    assert all("e-mail address" in a[0] for a in answers)
    last = [a[1] for a in answers]
    assert sum("reset link is on its way" in t for t in last) == 1
    assert sum("already sent to that address a few minutes ago" in t for t in last) == 39
    assert [r["email"] for r in shop.resets] == ["victim@example.com"]


async def test_a_refund_is_opened_once_per_order_and_the_second_asker_is_told(
    tmp_path: Path,
) -> None:
    shop = Shop()
    bundle = load_dialogue(load_settings(flows_dir=FLOWS, data_dir=tmp_path), shop=shop)
    first, second = Brain(bundle), Brain(bundle)
    second.session = Session.new(ConversationRef(channel="test", chat_id="another"))
    for brain in (first, second):
        assert "order number" in await brain.say("I want to return my order")
        assert "reason" in await brain.say("A1B2C3")
        assert "refund request" in await brain.say("it is too big")
    assert "RF-0001" in await first.say("yes")
    assert "was opened a few minutes ago" in await second.say("yes")
    assert len(shop.tickets) == 1


def registry(guard: ActionGuard, fail: list[bool]) -> ActionRegistry:
    reg = ActionRegistry(guard=guard)

    async def reset(args: Mapping[str, Any]) -> Any:
        if fail and fail.pop(0):
            raise ActionError("mail server down", retryable=False)
        return {"request_id": "PR-1"}

    reg.register("shop.password_reset", reset, CallPolicy(retries=0, effect=RESET))
    return reg


async def test_a_failed_reset_may_be_asked_for_again_at_once() -> None:
    guard = ActionGuard(MemoryLimits())
    reg = registry(guard, fail=[True])
    args = {"email": "Jane@Example.com "}
    with pytest.raises(ActionError) as failed:
        await reg.call("shop.password_reset", args, key="turn-1")
    assert not isinstance(failed.value, ActionRefused)
    assert await reg.call("shop.password_reset", args, key="turn-2") == {"request_id": "PR-1"}
    # The same turn run again goes through; another asking for the same address does not.
    assert await reg.call("shop.password_reset", args, key="turn-2") == {"request_id": "PR-1"}
    with pytest.raises(ActionRefused) as refused:
        await reg.call("shop.password_reset", {"email": "jane@example.com"}, key="turn-3")
    assert "10 minutes" in refused.value.reply and 590 < refused.value.retry_after <= 600


async def test_actions_are_limited_overall_and_per_target() -> None:
    guard = ActionGuard(MemoryLimits(), GuardSettings(per_minute=3, per_target=2, period=0))
    reg = registry(guard, fail=[])
    for i in range(2):
        await reg.call("shop.password_reset", {"email": "a@example.com"}, key=f"a{i}")
    with pytest.raises(ActionRefused, match="Too many requests"):
        await reg.call("shop.password_reset", {"email": "a@example.com"}, key="a2")
    await reg.call("shop.password_reset", {"email": "b@example.com"}, key="b0")
    with pytest.raises(ActionRefused, match="try again in 1 minute"):
        await reg.call("shop.password_reset", {"email": "c@example.com"}, key="c0")


class Recorder:
    def __init__(self) -> None:
        self.records: list[HandoffRecord] = []

    async def notify(self, record: HandoffRecord) -> None:
        self.records.append(record)


def record(conversation: str, key: str) -> HandoffRecord:
    return HandoffRecord(conversation, "webchat", "support", "human", 1.0, {}, key=key)


async def test_handoffs_are_limited_per_conversation_and_overall() -> None:
    inner = Recorder()
    target = GuardedHandoff(
        inner, ActionGuard(MemoryLimits(), GuardSettings(per_target=2, handoffs_per_minute=3))
    )
    await target.notify(record("webchat:a", "a1"))
    await target.notify(record("webchat:a", "a1"))  # the same turn run again
    await target.notify(record("webchat:a", "a2"))
    with pytest.raises(ActionRefused):
        await target.notify(record("webchat:a", "a3"))
    await target.notify(record("webchat:b", "b1"))
    with pytest.raises(ActionRefused, match="can't take more requests"):
        await target.notify(record("webchat:c", "c1"))
    assert [r.key for r in inner.records] == ["a1", "a1", "a2", "b1"]


async def test_a_conversation_with_a_person_asks_the_helpdesk_once(
    gateway_factory: GatewayFactory, tmp_path: Path, helpdesk: tuple[list[dict[str, Any]], str]
) -> None:
    """While a person has the conversation the bot stays silent, and asking again makes no new
    record; the one visitor still cannot make a record per message with /bot in between."""
    seen, url = helpdesk
    bundle, kw = bot(tmp_path, handoff_webhook_url=url, action_target_limit=2)
    async with gateway_factory(dialogue=bundle.dialogue, **kw) as (client, s):
        ws = await client.ws_connect("/chat/ws")
        await ws.receive_json()
        frames = [HUMAN, HUMAN, {"text": "/bot"}, HUMAN, {"text": "/bot"}, HUMAN]
        for turns, frame in enumerate(frames, 1):
            await ws.send_json(frame)
            await until_turns(s, turns)  # one at a time, in order
        # Every message is answered (the ones sent while waiting for a person are told so);
        # read until the last turn's answer, the refusal of a third handoff.
        texts: list[str] = []
        while not texts or "can't take more requests" not in texts[-1]:
            texts.append((await answer(ws))["text"])
        await ws.close()
    await bundle.stop()
    assert sum("passing you" in t for t in texts) == 2
    assert any("in the queue" in t for t in texts), "the second request is told where it stands"
    assert "can't take more requests" in texts[-1]
    assert len(seen) == 2


async def until_turns(services: Any, n: int) -> None:
    """Until `n` turns have been handled (one frame a turn, as each waits for the last)."""
    for _ in range(500):
        samples = services.metrics.registry.collect()
        done = sum(x.value for m in samples for x in m.samples if x.name == "gateway_turns_total")
        if done >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{n} turns were never handled")


class Down(MemoryLimits):
    async def hit(self, key: str, limit: int, window: float, event: str) -> float:
        raise StoreUnavailable("redis down")


async def test_limits_that_cannot_be_reached_refuse_the_action_and_leave_no_claim() -> None:
    """Fails closed (the flow's on_error says it could not be done), and nobody is told later
    that it was done already."""
    limits = Down()
    with pytest.raises(StoreUnavailable):
        await registry(ActionGuard(limits), fail=[]).call(
            "shop.password_reset", {"email": "a@example.com"}, key="t1"
        )
    assert all(not table for table in limits._claims.values())


async def test_limits_that_cannot_be_reached_let_the_handoff_through() -> None:
    inner = Recorder()
    await GuardedHandoff(inner, ActionGuard(Down())).notify(record("webchat:a", "a1"))
    assert len(inner.records) == 1
