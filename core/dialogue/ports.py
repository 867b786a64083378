"""What the flow runner needs from outside the core: actions to call and a place to hand a
conversation to a person. `integrations/` provides both."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Actions(Protocol):
    def names(self) -> Collection[str]:
        """Every action this registry can run, for the loader's undefined-action check."""
        ...

    async def call(self, name: str, args: Mapping[str, Any], key: str | None = None) -> Any:
        """Run the action; raises `core.dialogue.errors.ActionError` when it fails. `key`
        names this call in this turn: a turn run again (its session could not be saved)
        passes the same key, so a backend that honours it does the work once. Raises
        `ActionRefused` (with what to tell the customer) when an abuse limit says no."""
        ...


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    """What a person needs to pick the conversation up without asking again."""

    conversation: str
    channel: str
    queue: str
    intent: str | None
    confidence: float | None
    slots: dict[str, Any]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    at: float = 0.0
    key: str = ""
    """Idempotency key of the turn's handoff: the same when the turn is run again."""


class HandoffTarget(Protocol):
    async def notify(self, record: HandoffRecord) -> None:
        """Deliver the record; failures are the target's to log, never the conversation's.
        Raises `core.dialogue.errors.ActionRefused` when a limit keeps the record from any
        person: the bot then keeps the conversation and says why."""
        ...
