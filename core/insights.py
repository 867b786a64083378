"""How the bot is doing, per channel and day, from the recorded turns: containment, fallback,
clarification and handoff rates, satisfaction, the intents asked for and the latency."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


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


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (`p` in 0..100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _rate(n: int, of: int) -> float | None:
    return round(n / of, 4) if of else None


def summarise(turns: Iterable[TurnStat]) -> list[dict[str, Any]]:
    """One row per (UTC day, channel), oldest day first. Rates of turns: fallback,
    clarification, handoff; of conversations: containment (those of the day that never went
    to a person); satisfaction: the share of 👍 among the answers given."""
    groups: dict[tuple[str, str], list[TurnStat]] = defaultdict(list)
    for t in turns:
        day = datetime.fromtimestamp(t.at, UTC).date().isoformat()
        groups[(day, t.channel)].append(t)
    out = []
    for (day, channel), group in sorted(groups.items()):
        outcomes = Counter(t.outcome for t in group)
        convs = {t.conversation_id for t in group}
        handed = {t.conversation_id for t in group if t.outcome == "handoff"}
        up = sum(t.feedback == "up" for t in group)
        down = sum(t.feedback == "down" for t in group)
        latencies = [t.latency for t in group if t.latency is not None]
        n = len(group)
        out.append(
            {
                "day": day,
                "channel": channel,
                "turns": n,
                "conversations": len(convs),
                "containment": _rate(len(convs - handed), len(convs)),
                "fallback_rate": _rate(outcomes["fallback"], n),
                "clarification_rate": _rate(outcomes["clarified"], n),
                "handoff_rate": _rate(outcomes["handoff"], n),
                "satisfaction": _rate(up, up + down),
                "feedback": {"up": up, "down": down},
                "intents": dict(Counter(t.intent or "none" for t in group).most_common()),
                "latency_p50": percentile(latencies, 50),
                "latency_p95": percentile(latencies, 95),
            }
        )
    return out
