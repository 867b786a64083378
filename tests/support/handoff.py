"""A dialogue that hands off like the flows do, for the desk's and the console's tests."""

from __future__ import annotations

from core.models import Inbound, Outbound
from core.ports import NluResult, TurnOutcome
from core.session import Session


class PersonDialogue:
    """Hands off on 'person' as the flows do (`handoff: support`), silent while handed off,
    back on /bot; echoes otherwise."""

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        conv = inbound.conversation
        if "/bot" in (inbound.text, inbound.payload):
            session.handoff = False
            return TurnOutcome(replies=[Outbound(conversation=conv, text="bot again")])
        if session.handoff:
            return TurnOutcome(replies=(), handoff=True)
        if "person" in inbound.text:
            session.handoff, session.handoff_queue = True, "support"
            return TurnOutcome(
                replies=[Outbound(conversation=conv, text="passing you to a person")],
                intent="human",
                confidence=0.97,
                handoff=True,
            )
        session.slots["order_id"] = "A1B2C3"
        return TurnOutcome(replies=[Outbound(conversation=conv, text=f"echo {inbound.text}")])
