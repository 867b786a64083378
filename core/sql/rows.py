"""Rows of the conversation store's tables as the typed models the rest of the gateway reads,
and the agents' names they show."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from core.conversations import Conversation, Message, TurnFact
from core.handoff import State
from core.session import FailedAction
from core.sql.models import AgentRow, ConversationRow, MessageRow, TurnRow


def names_of(s: Session, ids: set[int | None]) -> dict[int, str]:
    """The names of the agents with these ids (None and unknown ids left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = s.execute(select(AgentRow.id, AgentRow.name).where(AgentRow.id.in_(wanted)))
    return {i: n for i, n in rows}


def conversation_of(r: ConversationRow, names: dict[int, str]) -> Conversation:
    return Conversation(
        id=r.id,
        key=r.key,
        channel=r.channel,
        chat_id=r.chat_id,
        thread_id=r.thread_id,
        customer_id=r.customer_id,
        customer_name=r.customer_name,
        state=State(r.state),
        holder=names.get(r.holder_id) if r.holder_id is not None else None,
        intent=r.intent,
        confidence=r.confidence,
        slots=dict(r.slots or {}),
        handoff_queue=r.handoff_queue,
        handoff_at=r.handoff_at,
        waiting_since=r.waiting_since,
        created_at=r.created_at,
        updated_at=r.updated_at,
        meta=dict(r.meta or {}),
        failed_actions=tuple(FailedAction.model_validate(f) for f in r.failed_actions or ()),
    )


def turn_of(r: TurnRow | Row[Any]) -> TurnFact:
    return TurnFact(
        key=r.key,
        at=r.at,
        text=r.text,
        intent=r.intent,
        confidence=r.confidence,
        ranking=[(str(n), float(c)) for n, c in (r.ranking or [])],
        outcome=r.outcome,
        flow=r.flow,
        flow_end=r.flow_end,
        latency=r.latency,
        asked_feedback=r.asked_feedback,
        feedback=r.feedback,
    )


def message_of(r: MessageRow, names: dict[int, str]) -> Message:
    return Message(
        id=r.id,
        conversation_id=r.conversation_id,
        direction=r.direction,  # type: ignore[arg-type]
        author=r.author,  # type: ignore[arg-type]
        agent=names.get(r.agent_id) if r.agent_id is not None else None,
        text=r.text,
        at=r.at,
        intent=r.intent,
        confidence=r.confidence,
        status=r.status,
        error=r.error,
    )
