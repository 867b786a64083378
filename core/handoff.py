"""The handoff as a state machine the gateway owns: bot → waiting for a person → with an agent →
resolved (and so back to the bot). Every transition is recorded with who and when by the
conversation store; asking for the state a conversation is already in changes nothing, so an
agent's double click, a retried API call or a turn run again is safe."""

from __future__ import annotations

from enum import StrEnum

from core.errors import HandoffError, NotWithPeople


class State(StrEnum):
    """Where a conversation stands: with the bot, waiting for a person, with an agent, resolved."""

    BOT = "bot"
    WAITING = "waiting"
    AGENT = "agent"
    RESOLVED = "resolved"
    """Closed by an agent: the bot answers the next message, as in `BOT`."""


WITH_PEOPLE = frozenset({State.WAITING, State.AGENT})
"""States in which the bot stays silent and every customer message is kept for a person."""

EDGES: dict[State, frozenset[State]] = {
    State.BOT: frozenset({State.WAITING}),
    State.RESOLVED: frozenset({State.WAITING}),
    State.WAITING: frozenset({State.AGENT, State.RESOLVED, State.BOT}),
    State.AGENT: frozenset({State.AGENT, State.RESOLVED, State.BOT}),
}


def plan(current: State, holder: int | None, to: State, new_holder: int | None) -> bool:
    """True when moving `current` (held by `holder`) to `to` (held by `new_holder`) is a
    transition to record; False when the conversation is there already (a repeat);
    `HandoffError` when the move is not allowed. Who may take a conversation from its holder
    is the caller's business (`HeldByOther`)."""
    if current == to and holder == new_holder:
        return False
    if to in (State.BOT, State.RESOLVED) and current not in WITH_PEOPLE:
        return False  # handed back or resolved already
    if to == State.WAITING and current in WITH_PEOPLE:
        return False  # a person was asked already
    if to == State.AGENT and current not in WITH_PEOPLE:
        raise NotWithPeople()
    if to not in EDGES[current]:
        raise HandoffError(f"cannot go from {current} to {to}")
    return True
