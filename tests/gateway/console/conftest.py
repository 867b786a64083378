"""The review inbox's tests: a copy of the bot's flows to label into, and misunderstood turns."""

from __future__ import annotations

from core.conversations import Said, TurnFact, TurnLog
from core.models import ConversationRef, Sender
from core.sql.store import SqlConversations
from tests.support.flows_copy import flows_copy

__all__ = ["flows_copy", "record"]


async def record(
    store: SqlConversations,
    chat: str,
    at: float,
    text: str,
    intent: str | None,
    confidence: float | None,
    outcome: str,
    *,
    channel: str = "telegram",
    feedback: str | None = None,
) -> None:
    """One recorded turn as the worker writes it (and the customer's 👍/👎 on it)."""
    ref = ConversationRef(channel=channel, chat_id=chat)
    key = f"{chat}-{at}"
    ranking = [(intent, confidence or 0.0)] if intent else []
    fact = TurnFact(key, at, text, intent, confidence, ranking, outcome, None, None, 0.2)
    said = [Said(key, text, at)]
    who = Sender(id=chat, name=f"Customer {chat}")
    await store.record_turn(
        TurnLog(ref, who, said, [], intent, confidence, {}, False, None, None, turn=fact)
    )
    if feedback:
        answer = TurnLog(
            ref, who, [], [], intent, confidence, {}, False, None, None, feedback=(feedback, key)
        )
        await store.record_turn(answer)
