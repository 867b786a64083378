"""How the bot is doing, per channel and day or week, from the recorded turns: containment,
fallback, clarification and handoff rates, why handoffs happened, satisfaction, the intents
asked for, the model's confidence and the latency."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

Period = Literal["day", "week"]
PERIODS: Final[tuple[Period, ...]] = ("day", "week")
BINS: Final = 10
"""Confidence histogram bins of 0.1 each (1.0 counts in the last)."""
TOP_INTENTS: Final = 30
"""Intents listed by name; the rest are summed under `OTHERS` (a button's payload names an
intent, and whoever sends a request chooses it)."""
OTHERS: Final = "(others)"
UNKNOWN_REASON: Final = "unknown"


@dataclass(frozen=True, slots=True)
class TurnStat:
    """The few columns of a recorded turn the insights count (no customer text)."""

    conversation_id: int
    channel: str
    at: float
    intent: str | None
    outcome: str
    latency: float | None
    feedback: str | None
    confidence: float | None = None
    reason: str | None = None
    """For a handoff: the queue the bot handed the customer to, which says why (`fallback`
    after misunderstood turns in a row, `support` when asked for a person, or a flow's own)."""
    waiting: bool = False
    """A handoff turn after a handoff turn: the customer was already waiting for (or talking
    with) a person, so the bot handed nothing off and did nothing else."""


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (`p` in 0..100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _rate(n: int, of: int) -> float | None:
    return round(n / of, 4) if of else None


def period_start(day: date, period: Period) -> date:
    """The first day of the period holding `day` (weeks start on Monday, as ISO's do)."""
    return day - timedelta(days=day.weekday()) if period == "week" else day


def _day(at: float) -> date:
    return datetime.fromtimestamp(at, UTC).date()


def _top(counts: Counter[str], n: int = TOP_INTENTS) -> dict[str, int]:
    top = dict(counts.most_common(n))
    rest = sum(counts.values()) - sum(top.values())
    if rest:
        top[OTHERS] = top.get(OTHERS, 0) + rest
    return top


def histogram(values: Iterable[float], bins: int = BINS) -> list[int]:
    """Counts of `values` (0..1) in `bins` equal bins; 1.0 in the last."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, math.floor(v * bins)))] += 1
    return counts


def summary(group: Sequence[TurnStat]) -> dict[str, Any]:
    """The figures of a set of turns. Rates of the bot's turns (those not spent waiting for a
    person): fallback, clarification, handoff; of conversations: containment (those that never
    went to a person within the set); satisfaction: the share of 👍 among the answers to "Did
    that help?"."""
    bots = [t for t in group if not t.waiting]
    outcomes = Counter(t.outcome for t in bots)
    convs = {t.conversation_id for t in group}
    handed = [t for t in bots if t.outcome == "handoff"]
    up = sum(t.feedback == "up" for t in group)
    down = sum(t.feedback == "down" for t in group)
    latencies = [t.latency for t in group if t.latency is not None]
    n = len(bots)
    return {
        "turns": len(group),
        "bot_turns": n,
        "conversations": len(convs),
        "containment": _rate(len(convs - {t.conversation_id for t in handed}), len(convs)),
        "fallback_rate": _rate(outcomes["fallback"], n),
        "clarification_rate": _rate(outcomes["clarified"], n),
        "handoff_rate": _rate(outcomes["handoff"], n),
        "handoffs": len(handed),
        "handoff_reasons": dict(Counter(t.reason or UNKNOWN_REASON for t in handed).most_common()),
        "satisfaction": _rate(up, up + down),
        "feedback": {"up": up, "down": down},
        "intents": _top(Counter(t.intent or "none" for t in bots)),
        "confidence": histogram(t.confidence for t in bots if t.confidence is not None),
        "latency_p50": percentile(latencies, 50),
        "latency_p95": percentile(latencies, 95),
    }


def summarise(turns: Iterable[TurnStat], period: Period = "day") -> list[dict[str, Any]]:
    """One row per (period, channel), oldest first; `period` is the ISO date it starts on."""
    groups: dict[tuple[str, str], list[TurnStat]] = defaultdict(list)
    for t in turns:
        groups[(period_start(_day(t.at), period).isoformat(), t.channel)].append(t)
    return [
        {"period": start, "channel": channel, **summary(group)}
        for (start, channel), group in sorted(groups.items())
    ]


def report(
    turns: Sequence[TurnStat], since: float, until: float, period: Period = "day"
) -> dict[str, Any]:
    """What the insights page draws: the figures of the whole range, of each period in it
    (every period listed, empty ones too, so a chart's time axis has no holes), of each
    channel, and of each period and channel."""
    by_period: dict[str, list[TurnStat]] = defaultdict(list)
    by_channel: dict[str, list[TurnStat]] = defaultdict(list)
    for t in turns:
        by_period[period_start(_day(t.at), period).isoformat()].append(t)
        by_channel[t.channel].append(t)
    starts = []
    day, last = (
        period_start(_day(since), period),
        _day(until - 0.001),
    )  # `until` is not in the range
    step = timedelta(days=7 if period == "week" else 1)
    while day <= last:
        starts.append(day.isoformat())
        day += step
    return {
        "total": summary(turns),
        "periods": [{"period": s, **summary(by_period.get(s, []))} for s in starts],
        "channels": [{"channel": c, **summary(g)} for c, g in sorted(by_channel.items())],
        "rows": summarise(turns, period),
    }
