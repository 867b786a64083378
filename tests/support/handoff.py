"""A dialogue that hands off like the flows do, for the desk's and the console's tests."""

from __future__ import annotations

import time

from core.models import Inbound, Outbound
from core.ports import NluResult, TurnOutcome
from core.session import FailedAction, Session

SHOP_DOWN = "ActionError: GET https://shop.test/orders/A1B2C3: HTTP 503"
"""What the failed lookup says with `shop_down`."""


class PersonDialogue:
    """Hands off on 'person' as the flows do (`handoff: support`), silent while handed off,
    back on /bot; echoes otherwise. With `shop_down`, asking about an order hands off too, after
    the shop's lookup failed (as the orders flow's `on_error` does)."""

    def __init__(self, *, shop_down: bool = False) -> None:
        self.shop_down = shop_down

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        conv = inbound.conversation
        if "/bot" in (inbound.text, inbound.payload):
            session.handoff = False
            return TurnOutcome(replies=[Outbound(conversation=conv, text="bot again")])
        if session.handoff:
            return TurnOutcome(replies=(), handoff=True)
        shop_failed = self.shop_down and "order" in inbound.text
        if shop_failed:
            session.failed_actions.append(
                FailedAction(at=time.time(), flow="orders", action="orders.lookup", error=SHOP_DOWN)
            )
        if "person" in inbound.text or shop_failed:
            session.handoff, session.handoff_queue = True, "support"
            return TurnOutcome(
                replies=[Outbound(conversation=conv, text="passing you to a person")],
                intent="human",
                confidence=0.97,
                handoff=True,
            )
        session.slots["order_id"] = "A1B2C3"
        return TurnOutcome(replies=[Outbound(conversation=conv, text=f"echo {inbound.text}")])
