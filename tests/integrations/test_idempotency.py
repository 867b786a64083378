"""A turn run twice (its session could not be saved, so the engine runs it again on the old
session) repeats no side effect: one refund ticket, one handoff webhook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from config.settings import load_settings
from core.models import ConversationRef, Inbound, Sender
from core.session import Session
from gateway.commands.shop import build_shop_app
from gateway.dialogue_loader import DialogueBundle, load_dialogue
from integrations.shop import Shop
from tests.support.flows_nlu import FLOWS, ExampleNlu


class Brain:
    def __init__(self, bundle: DialogueBundle):
        self.bundle = bundle
        self.nlu = ExampleNlu.from_dir(FLOWS, bundle.extractor)
        self.session = Session.new(ConversationRef(channel="test", chat_id="idem"))
        self.n = 0

    def next_inbound(self, text: str) -> Inbound:
        self.n += 1
        conv = self.session.conversation
        return Inbound(event_id=f"e{self.n}", conversation=conv, sender=Sender(id="u"), text=text)

    async def turn(self, session: Session, inbound: Inbound) -> str:
        outcome = await self.bundle.dialogue.step(
            session, inbound, await self.nlu.parse(inbound.text)
        )
        return "\n".join(r.text for r in outcome.replies)

    async def say(self, text: str) -> str:
        return await self.turn(self.session, self.next_inbound(text))

    async def twice(self, text: str) -> tuple[str, str]:
        """The turn, then the same inbound again on the session as it was before it."""
        old = Session.model_validate_json(self.session.model_dump_json())
        inbound = self.next_inbound(text)
        return await self.turn(self.session, inbound), await self.turn(old, inbound)


async def refund_twice(brain: Brain) -> tuple[str, str]:
    assert "order number" in await brain.say("I want to return my order")
    assert "reason" in await brain.say("A1B2C3")
    assert "refund request" in await brain.say("it is too big")
    return await brain.twice("yes")


async def test_a_retried_refund_turn_opens_one_ticket(tmp_path: Path) -> None:
    shop = Shop()
    settings = load_settings(flows_dir=FLOWS, data_dir=tmp_path, shop_api_url=None)
    first, again = await refund_twice(Brain(load_dialogue(settings, shop=shop)))
    assert "RF-0001" in first and "RF-0001" in again
    assert len(shop.tickets) == 1


async def test_a_retried_refund_turn_opens_one_ticket_over_http(tmp_path: Path) -> None:
    shop = Shop()
    server = TestServer(build_shop_app(shop), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    bundle = load_dialogue(load_settings(flows_dir=FLOWS, data_dir=tmp_path, shop_api_url=url))
    try:
        first, again = await refund_twice(Brain(bundle))
    finally:
        await bundle.registry.close()
        await server.close()
    assert "RF-0001" in first and "RF-0001" in again
    assert len(shop.tickets) == 1


def test_the_shop_answers_a_repeated_key_with_the_first_result() -> None:
    shop = Shop()
    one = shop.refund("A1B2C3", "too big", key="k1")
    assert shop.refund("A1B2C3", "too big", key="k1") == one
    assert shop.refund("A1B2C3", "too big", key="k2") != one
    assert shop.password_reset("a@b.c", key="k1") == shop.password_reset("a@b.c", key="k1")
    assert (len(shop.tickets), len(shop.resets)) == (2, 1)


async def test_a_retried_handoff_turn_posts_the_webhook_once(
    tmp_path: Path, helpdesk: tuple[list[dict[str, Any]], str]
) -> None:
    seen, url = helpdesk
    settings = load_settings(flows_dir=FLOWS, data_dir=tmp_path, handoff_webhook_url=url)
    bundle = load_dialogue(settings)
    brain = Brain(bundle)
    first, again = await brain.twice("I want to talk to a human")
    await bundle.handoff.close()
    assert "person" in first and "person" in again
    assert len(seen) == 1
    assert seen[0]["header"] == f"{brain.session.conversation.key}:e1:handoff"
    assert seen[0]["queue"] == "support"
