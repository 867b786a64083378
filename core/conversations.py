"""The conversation store as the rest of the gateway sees it: the records it returns and the
protocols its SQL implementation (`core.sql`) follows. The console, its API and the turn's
recorder use these; a later reader (insights, a review inbox) adds methods, not new stores."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from core.handoff import State
from core.insights import TurnStat
from core.models import ConversationRef, Inbound, Sender
from core.session import FailedAction, Session

Direction = Literal["in", "out"]
Author = Literal["customer", "bot", "agent", "system"]


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation as the team sees it: who, where, what the bot understood, and where
    the handoff stands (`holder`: the agent's name)."""

    id: int
    key: str
    channel: str
    chat_id: str
    thread_id: str | None
    customer_id: str
    customer_name: str | None
    state: State
    holder: str | None
    intent: str | None
    confidence: float | None
    slots: dict[str, Any]
    handoff_queue: str | None
    handoff_at: float | None
    waiting_since: float | None
    created_at: float
    updated_at: float
    meta: dict[str, Any] = field(default_factory=dict)
    failed_actions: tuple[FailedAction, ...] = ()
    """The bot's last failed integration calls in this conversation, oldest first."""

    @property
    def ref(self) -> ConversationRef:
        return ConversationRef(channel=self.channel, chat_id=self.chat_id, thread_id=self.thread_id)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation, either way: the customer's, the bot's or an agent's."""

    id: int
    conversation_id: int
    direction: Direction
    author: Author
    agent: str | None
    text: str
    at: float
    intent: str | None = None
    confidence: float | None = None
    status: str = "sent"
    """`sent`, `sending`, or `failed` (then `error` says why: the channel's own reason)."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of the handoff state machine, with who made it, why and when."""

    from_state: State
    to_state: State
    actor: str
    """`bot`, `customer`, or `agent:<name>`."""
    reason: str | None
    at: float


@dataclass(frozen=True, slots=True)
class Note:
    """An agent's internal note on a conversation; never shown to the customer."""

    id: int
    agent: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class Agent:
    """A member of the support team as the console knows them (never their password)."""

    id: int
    name: str
    role: str
    active: bool = True
    last_seen_at: float | None = None


@dataclass(frozen=True, slots=True)
class Said:
    """A line of a turn to record: `key` makes writing it again harmless."""

    key: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class TurnFact:
    """One turn as the insights and a reviewer read it: what the customer said (redacted
    unless the team keeps raw text), what the model made of it and what the bot did. `key`
    (the turn's last queue entry) makes writing it again harmless."""

    key: str
    at: float
    text: str
    intent: str | None
    confidence: float | None
    ranking: Sequence[tuple[str, float]]
    outcome: str
    flow: str | None
    flow_end: str | None
    latency: float | None
    asked_feedback: bool = False
    """The turn ended with "Did that help?"."""
    feedback: str | None = None
    """`up` or `down`: the customer's answer to "Did that help?" after this turn."""


@dataclass(frozen=True, slots=True)
class TurnLog:
    """What one finished turn adds to the store (built by the recorder from the session)."""

    conversation: ConversationRef
    customer: Sender
    said: Sequence[Said]
    replies: Sequence[Said]
    intent: str | None
    confidence: float | None
    slots: dict[str, Any]
    handoff: bool
    handoff_queue: str | None
    handoff_at: float | None
    meta: dict[str, str] = field(default_factory=dict)
    failed_actions: Sequence[FailedAction] = ()
    turn: TurnFact | None = None
    """The turn's own record (None: only its messages are written)."""
    feedback: tuple[str, str] | None = None
    """(`up` or `down`, the key of the turn it is about): the customer's answer to "Did that
    help?", kept on that turn if it is still there."""


@dataclass(frozen=True, slots=True)
class TurnWritten:
    """What recording one finished turn changed, for the console's live news."""

    conversation: Conversation
    new_messages: int
    moved: Transition | None
    """The handoff transition this turn caused (a new request, or the bot taking back)."""


@dataclass(frozen=True, slots=True)
class Search:
    """The console's search of past conversations; every field left None matches all."""

    text: str | None = None
    """Part of the customer's id or name."""
    channel: str | None = None
    intent: str | None = None
    state: State | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50


class ConversationStore(Protocol):
    """Conversations, their messages (both ways), handoff transitions and notes. Written by the
    worker after each turn and by the console's actions; read by the console and its API."""

    async def record_turn(self, log: TurnLog) -> TurnWritten: ...

    async def get(self, conversation_id: int) -> Conversation | None: ...

    async def by_key(self, key: str) -> Conversation | None: ...

    async def queue(self) -> list[Conversation]:
        """Conversations with people (waiting or with an agent), the longest waiting first."""
        ...

    async def search(self, query: Search) -> list[Conversation]: ...

    async def messages(self, conversation_id: int, limit: int = 500) -> list[Message]: ...

    async def transitions(self, conversation_id: int) -> list[Transition]: ...

    async def turns(self, conversation_id: int, limit: int = 500) -> list[TurnFact]:
        """The conversation's recorded turns, oldest first."""
        ...

    async def asked_since(self, conversation_key: str, since: float) -> bool:
        """Was the conversation asked "Did that help?" at or after `since`?"""
        ...

    async def turn_stats(
        self, since: float, until: float, channel: str | None = None
    ) -> list[TurnStat]:
        """What the insights count of the turns recorded in [since, until), of one channel
        or all."""
        ...

    def turn_records(
        self, since: float, until: float, channel: str | None = None
    ) -> AsyncGenerator[tuple[int, str, TurnFact], None]:
        """(conversation id, channel, turn) of the turns recorded in [since, until), oldest
        first, as stored: for an export, streamed."""
        ...

    async def notes(self, conversation_id: int) -> list[Note]: ...

    async def move(
        self,
        conversation_id: int,
        to: State,
        *,
        actor: str,
        agent_id: int | None = None,
        holder_id: int | None = None,
        reason: str | None = None,
        take_over: bool = False,
    ) -> Transition | None:
        """Record a transition (None: it was there already). Raises `HeldByOther` when another
        agent holds it and `take_over` is False, `HandoffError` when not allowed."""
        ...

    async def add_message(
        self,
        conversation_id: int,
        *,
        key: str,
        direction: Direction,
        author: Author,
        text: str,
        agent_id: int | None = None,
        status: str = "sent",
    ) -> Message: ...

    async def set_status(self, message_id: int, status: str, error: str | None = None) -> None: ...

    async def add_note(self, conversation_id: int, agent_id: int, text: str) -> Note: ...


class AgentStore(Protocol):
    """The support team's accounts and their signed-in sessions and API tokens."""

    async def add(self, name: str, role: str, password: str) -> Agent: ...

    async def get(self, name: str) -> Agent | None: ...

    async def by_id(self, agent_id: int) -> Agent | None: ...

    async def all(self) -> list[Agent]: ...

    async def verify(self, name: str, password: str) -> Agent | None:
        """The agent when the password is right; None for a wrong one or an unknown name
        alike (with the same work done either way)."""
        ...

    async def start_session(self, agent_id: int, kind: str, ttl: float | None) -> tuple[str, str]:
        """A new secret (kept only as a digest) and its CSRF token."""
        ...

    async def session(self, secret: str) -> tuple[Agent, str, str] | None:
        """(agent, csrf token, kind) of a live session or token."""
        ...

    async def end_session(self, secret: str) -> None: ...

    async def seen(self, agent_id: int) -> None: ...

    async def online(self, within: float) -> int:
        """Agents seen in the console within `within` seconds."""
        ...


class TurnRecorder(Protocol):
    """Told of each finished turn by the engine (once its session is saved, before its replies
    go out and its queue entries are acknowledged): `core.desk.Recorder` writes it to
    the conversation store. Raises `StoreUnavailable` to have the turn's entries kept and
    tried again."""

    async def record(self, session: Session, inbounds: Sequence[Inbound]) -> None: ...
