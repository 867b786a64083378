"""The insights' arithmetic on known turns: rates per channel and day, satisfaction, intents
and latency percentiles."""

from __future__ import annotations

from core.insights import TurnStat, percentile, summarise

DAY1 = 1_764_979_200.0  # 2025-12-06 00:00 UTC
DAY2 = DAY1 + 86_400


def t(
    conv: int,
    outcome: str,
    *,
    channel: str = "telegram",
    at: float = DAY1,
    intent: str | None = "order_status",
    latency: float | None = 1.0,
    feedback: str | None = None,
) -> TurnStat:
    return TurnStat(conv, channel, at + conv, intent, outcome, latency, feedback)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([7.0], 95) == 7.0


def test_rates_per_channel_and_day() -> None:
    turns = [
        t(1, "answered", latency=0.5, feedback="up"),
        t(1, "clarified", intent=None, latency=1.5),
        t(2, "fallback", intent=None, latency=2.5),
        t(2, "handoff", intent="human", latency=3.5),
        t(3, "answered", latency=10.0, feedback="down"),
        t(4, "answered", channel="whatsapp", feedback="up"),
        t(5, "answered", at=DAY2, latency=None),
    ]
    rows = summarise(turns)
    assert [(r["day"], r["channel"]) for r in rows] == [
        ("2025-12-06", "telegram"),
        ("2025-12-06", "whatsapp"),
        ("2025-12-07", "telegram"),
    ]
    tg = rows[0]
    assert (tg["turns"], tg["conversations"]) == (5, 3)
    assert tg["containment"] == round(2 / 3, 4)  # conversation 2 went to a person
    assert (tg["fallback_rate"], tg["clarification_rate"], tg["handoff_rate"]) == (0.2, 0.2, 0.2)
    assert tg["satisfaction"] == 0.5 and tg["feedback"] == {"up": 1, "down": 1}
    assert tg["intents"] == {"order_status": 2, "none": 2, "human": 1}
    assert (tg["latency_p50"], tg["latency_p95"]) == (2.5, 10.0)
    assert rows[1]["satisfaction"] == 1.0 and rows[1]["containment"] == 1.0
    assert rows[2]["satisfaction"] is None and rows[2]["latency_p50"] is None
