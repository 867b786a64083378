"""The conversation store's tables. Times are seconds since the epoch (floats, as everywhere
else in the gateway), so SQLite and PostgreSQL store and compare them the same way. A change of
shape is a new migration in `migrations/versions/`, never an edit of a shipped one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The declarative base of the conversation store's tables (Alembic migrates them)."""

    pass


class AgentRow(Base):
    """The `agents` table."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    active: Mapped[bool] = mapped_column(default=True)


class AgentSessionRow(Base):
    """A signed-in browser (`kind` cookie) or an API token (`kind` token): only a digest of
    the secret is kept."""

    __tablename__ = "agent_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ConversationRow(Base):
    """The `conversations` table: one row per customer conversation and its handoff state."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_state_waiting", "state", "waiting_since"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    channel: Mapped[str] = mapped_column(String(32), index=True)
    chat_id: Mapped[str] = mapped_column(String(255))
    thread_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    customer_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="bot")
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), nullable=True)
    intent: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    handoff_queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handoff_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    """When the customer's current (or last) handoff was requested: the session's value, so
    a turn run again does not count as a second request."""
    waiting_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What a reply needs to thread natively (an e-mail's subject and Message-ID)."""
    failed_actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """The bot's last failed integration calls (`core.session.FailedAction`), for the card."""


class MessageRow(Base):
    """The `messages` table: both directions, the agents' too."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("conversation_id", "key", name="uq_messages_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    """The platform's event id (customer) or the outbox key (bot, agent): written once."""
    direction: Mapped[str] = mapped_column(String(4))
    author: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float, index=True)
    intent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="sent")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class HandoffRow(Base):
    """One transition of the handoff state machine: who moved it, when, and why."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(80))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[float] = mapped_column(Float)


class TurnRow(Base):
    """One turn of the bot: what the customer said (redacted unless `STORE_RAW_TEXT`), the
    intent, its runners-up, what the bot did and how fast; the 👍/👎 the customer gave it."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("conversation_id", "key", name="uq_turns_key"),
        Index("ix_turns_channel_at", "channel", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float, index=True)
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    ranking: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """[[intent, confidence], ...]: the model's best three."""
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    flow: Mapped[str | None] = mapped_column(String(128), nullable=True)
    flow_end: Mapped[str | None] = mapped_column(String(16), nullable=True)
    latency: Mapped[float | None] = mapped_column(Float, nullable=True)
    asked_feedback: Mapped[bool] = mapped_column(default=False)
    """The turn ended with "Did that help?"."""
    feedback: Mapped[str | None] = mapped_column(String(8), nullable=True)
    """`up` or `down` once the customer answered "Did that help?"."""
    feedback_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class NoteRow(Base):
    """The `notes` table: agents' internal notes."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float)


class ReviewRow(Base):
    """A reviewer's label on one recorded turn (one per turn: a later label replaces it), with
    the intent the model gave it, so the live precision stays what it was when labelled."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), unique=True)
    label: Mapped[str] = mapped_column(String(16), index=True)
    """`right`, `relabel`, `example` or `ignore`."""
    intent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """The intent the turn (or the new example) belongs to; None when ignored."""
    example: Mapped[str | None] = mapped_column(Text, nullable=True)
    predicted: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    reviewer: Mapped[str] = mapped_column(String(64))
    reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    at: Mapped[float] = mapped_column(Float, index=True)
