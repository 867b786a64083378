"""What the review inbox lists and what a reviewer can say about a turn: the reasons a turn is
worth a look, the labels, and the live per-intent precision estimated from the labels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

Reason = Literal["low_confidence", "clarified", "fallback", "thumbs_down", "handoff"]
REASONS: Final[tuple[Reason, ...]] = (
    "low_confidence",
    "clarified",
    "fallback",
    "thumbs_down",
    "handoff",
)
LabelKind = Literal["right", "relabel", "example", "ignore"]
LABELS: Final[tuple[LabelKind, ...]] = ("right", "relabel", "example", "ignore")
JUDGED: Final[tuple[LabelKind, ...]] = ("right", "relabel")
"""The labels that say whether the model's intent was right: the ones precision counts."""
Status = Literal["open", "done", "all"]


def reasons_of(
    outcome: str, confidence: float | None, feedback: str | None, below: float
) -> list[Reason]:
    """Why a turn is in the inbox (empty: it is not). `below`: the confidence under which an
    answered turn is worth a look too."""
    out: list[Reason] = []
    if confidence is not None and confidence < below:
        out.append("low_confidence")
    if outcome in ("clarified", "fallback", "handoff"):
        out.append(outcome)  # type: ignore[arg-type]
    if feedback == "down":
        out.append("thumbs_down")
    return out


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """The inbox's filters (None: any); `status` open lists the turns not labelled yet. Turns
    come newest first, `limit` at most; `below` is the confidence under which a turn is low."""

    reason: Reason | None = None
    channel: str | None = None
    intent: str | None = None
    since: float | None = None
    until: float | None = None
    status: Status = "open"
    below: float = 0.7
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Label:
    """A reviewer's word on one turn. `intent`: the intent the turn (right, relabel) or the new
    example belongs to; `example`: the new example's text (kind `example` only); `predicted`:
    what the model said, kept so precision does not change if the turn is erased."""

    turn_id: int
    kind: LabelKind
    intent: str | None
    example: str | None
    predicted: str | None
    reviewer: str
    at: float


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A recorded turn in the inbox, with the label it has (None: not reviewed yet)."""

    turn_id: int
    conversation_id: int
    channel: str
    at: float
    text: str
    intent: str | None
    confidence: float | None
    ranking: list[tuple[str, float]]
    outcome: str
    feedback: str | None
    reasons: list[Reason]
    label: Label | None = None


@dataclass(slots=True)
class Precision:
    """One intent's live precision: of the reviewed turns the model gave this intent, how many
    a reviewer called right."""

    intent: str
    right: int = 0
    wrong: int = 0

    @property
    def reviewed(self) -> int:
        return self.right + self.wrong

    @property
    def precision(self) -> float | None:
        return round(self.right / self.reviewed, 4) if self.reviewed else None


def live_precision(judged: Iterable[tuple[str | None, str, int]]) -> dict[str, Precision]:
    """From (predicted intent, label kind, count) rows: per predicted intent, right vs
    relabelled. Turns without an intent and the other kinds count for nothing."""
    out: dict[str, Precision] = {}
    for predicted, kind, n in judged:
        if predicted is None or kind not in JUDGED:
            continue
        p = out.setdefault(predicted, Precision(predicted))
        if kind == "right":
            p.right += n
        else:
            p.wrong += n
    return dict(sorted(out.items()))
