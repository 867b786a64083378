"""Per-conversation state, saved through a `SessionStore` after every turn."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.models import Button, ConversationRef, InboundKind, Outbound

SESSION_FORMAT = 1
"""Bumped when the stored shape changes; stores refuse (and restart) sessions of another format."""


class Frame(BaseModel):
    """One flow in progress: where it is and what it has collected."""

    model_config = ConfigDict(extra="forbid")

    flow: str
    step: int = 0
    slots: dict[str, Any] = Field(default_factory=dict)
    asking: str | None = None
    """The slot or question the flow is waiting on, if any."""
    retries: int = 0
    vars: dict[str, Any] = Field(default_factory=dict)
    """Results of `call` steps bound with `as:`."""


class FailedAction(BaseModel):
    """A flow's call to an integration that failed (the shop's API down, an unknown order),
    kept for the agent's context card so a person sees what the bot tried and what broke."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float
    flow: str
    action: str
    error: str
    """The failure's kind and reason, with personal data redacted."""


FAILED_ACTIONS_KEPT = 5
"""Failed calls a session remembers, the latest: enough for the card, bounded per customer."""


class TurnRecord(BaseModel):
    """One turn in a session's history: what the user sent, what the bot understood and
    answered. An edit or delete that was not answered is kept as a record of its own `kind`
    (`user`: the edited text; `target`: the id of the message changed)."""

    model_config = ConfigDict(extra="forbid")

    at: float
    user: str
    payload: str | None = None
    intent: str | None = None
    confidence: float | None = None
    bot: list[str] = Field(default_factory=list)
    kind: InboundKind = "message"
    target: str | None = None
    ranking: list[tuple[str, float]] = Field(default_factory=list)
    """The model's best intents (up to three) and their confidences: the runners-up of the
    intent it chose, for a reviewer."""
    outcome: str | None = None
    """`answered`, `clarified`, `fallback` or `handoff` (`core.outcomes`)."""
    flow: str | None = None
    """The flow the turn ended or abandoned, or the one still waiting for an answer."""
    flow_end: str | None = None
    """`completed` or `abandoned` when a flow ended in this turn; None otherwise."""
    latency: float | None = None
    """Seconds from the message's arrival to its answer being decided."""
    asked_feedback: bool = False
    """The turn ended with "Did that help?"."""
    feedback: tuple[str, str] | None = None
    """(`up` or `down`, the turn it is about) when this turn was the customer's answer."""


class Session(BaseModel):
    """Everything the bot remembers of one conversation."""

    model_config = ConfigDict(extra="forbid")

    format: int = SESSION_FORMAT
    conversation: ConversationRef
    stack: list[Frame] = Field(default_factory=list)
    """Flows in progress, innermost last; an interrupted flow waits below the one that
    interrupted it."""
    paused: list[Frame] = Field(default_factory=list)
    """Flows interrupted by another intent that the bot offers to resume."""
    slots: dict[str, Any] = Field(default_factory=dict)
    history: list[TurnRecord] = Field(default_factory=list)
    fallbacks: int = 0
    frustration: int = 0
    """Turns in a row the customer sounded annoyed."""
    handoff: bool = False
    handoff_queue: str | None = None
    handoff_at: float | None = None
    """When the current handoff was asked for: the conversation store counts one request per
    value, so a turn run again is not a second one."""
    handoff_slots: dict[str, Any] = Field(default_factory=dict)
    """What the flows had collected when the conversation went to a person (their frames are
    cleared then), for the agent's context card."""
    failed_actions: list[FailedAction] = Field(default_factory=list)
    """The last failed integration calls, oldest first (`FAILED_ACTIONS_KEPT` at most)."""
    handoff_notice_at: float = 0.0
    """When the customer was last told where their handoff stands."""
    locale: str | None = None
    told_waiting: bool = False
    """The customer has been told, since the handoff, that a person will answer."""
    feedback_asked_at: float = 0.0
    """When the customer was last asked "Did that help?" (asked at most every FEEDBACK_EVERY)."""
    feedback_turn: str | None = None
    """The turn (its event's dedupe key) the open "Did that help?" is about; None: no question
    open, and a late press is ignored."""
    offered: list[Button] = Field(default_factory=list)
    """The buttons of the bot's last message, so "2" or a button's label maps back to its payload
    on channels without native buttons."""
    turn_entries: list[str] = Field(default_factory=list)
    """Queue entries the last turn consumed."""
    pending: list[Outbound] = Field(default_factory=list)
    """The last turn's replies, saved with the state in one write: a worker that takes over an
    entry after a crash re-sends these (skipping what went out) instead of running the turn
    again."""
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    revision: int = 0

    @property
    def key(self) -> str:
        return self.conversation.key

    @classmethod
    def new(cls, conversation: ConversationRef) -> Session:
        return cls(conversation=conversation)

    def remember(self, record: TurnRecord, keep: int) -> None:
        self.history.append(record)
        if len(self.history) > keep:
            del self.history[: len(self.history) - keep]
