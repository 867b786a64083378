"""What a turn came to, as the metrics count it: `answered`, `clarified`, `fallback`, `handoff`
or `error`, and its intent from a bounded set of names (a metric label must never carry what a
customer typed, and a button's payload is typed by whoever sends the request)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Literal

from core.metrics import Metrics
from core.ports import TurnOutcome

Outcome = Literal["answered", "clarified", "fallback", "handoff", "error"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("answered", "clarified", "fallback", "handoff", "error")
MISSED_KEY: Final = "missed"
"""`TurnOutcome.extra` key where the flow runner says it did not understand: `clarified`
(it offered the likely intents) or `fallback` (it said what it can do)."""
FLOW_END_KEY: Final = "flow_end"
"""`TurnOutcome.extra` key where the flow runner says a flow ended in the turn: a pair
(`completed` or `abandoned`, the flow's name), or None."""
FEEDBACK_KEY: Final = "feedback"
"""`TurnOutcome.extra` key of the customer's answer to "Did that help?": (`up` or `down`, the
dedupe key of the turn it is about)."""
ASKED_FEEDBACK_KEY: Final = "asked_feedback"
"""`TurnOutcome.extra` key: True when the turn's replies end with "Did that help?"."""
OTHER: Final = "other"
NONE: Final = "none"


def outcome_of(turn: TurnOutcome) -> Outcome:
    """A handoff wins (the customer now waits for a person, whatever was said before it);
    then what the runner reported as not understood; anything else was answered."""
    if turn.handoff:
        return "handoff"
    missed = turn.extra.get(MISSED_KEY)
    if missed == "clarified":
        return "clarified"
    if missed == "fallback":
        return "fallback"
    return "answered"


def intent_label(intent: str | None, known: Collection[str]) -> str:
    """The intent when the flows know it, `none` when there was none, else `other`."""
    if intent is None:
        return NONE
    return intent if intent in known else OTHER


def count_turn(
    metrics: Metrics, channel: str, turn: TurnOutcome | None, intent: str | None
) -> None:
    """One more turn in `gateway_turns_total`; `turn` None: it failed (`error`)."""
    outcome = "error" if turn is None else outcome_of(turn)
    label = intent_label(intent, metrics.known_intents())
    metrics.turns.labels(channel=channel, outcome=outcome, intent=label).inc()
