"""The insights' arithmetic on known turns: rates per channel and day or week, handoff reasons,
satisfaction, intents, the confidence histogram and latency percentiles."""

from __future__ import annotations

from core.insights import OTHERS, TurnStat, histogram, percentile, report, summarise

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
    confidence: float | None = None,
    reason: str | None = None,
) -> TurnStat:
    return TurnStat(
        conv, channel, at + conv, intent, outcome, latency, feedback, confidence, reason
    )


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
    assert [(r["period"], r["channel"]) for r in rows] == [
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


def test_confidence_histogram_has_ten_bins_with_one_in_the_last() -> None:
    assert histogram([0.0, 0.05, 0.1, 0.55, 0.99, 1.0]) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert histogram([]) == [0] * 10


def test_handoff_reasons_and_confidence_in_a_summary() -> None:
    turns = [
        t(1, "handoff", reason="fallback", confidence=0.2),
        t(2, "handoff", reason="support", confidence=0.97),
        t(3, "handoff", reason="fallback", confidence=0.31),
        t(4, "handoff"),
        t(5, "answered", confidence=0.8),
    ]
    [row] = summarise(turns)
    assert row["handoffs"] == 4
    assert row["handoff_reasons"] == {"fallback": 2, "support": 1, "unknown": 1}
    assert row["confidence"] == [0, 0, 1, 1, 0, 0, 0, 0, 1, 1]
    assert row["containment"] == 0.2


def test_weeks_start_on_monday_and_every_period_is_listed() -> None:
    monday = DAY1 + 2 * 86_400  # 2025-12-08
    turns = [
        t(1, "answered", at=DAY1),  # Saturday: the week of 2025-12-01
        t(2, "fallback", at=monday + 86_400),
        t(3, "handoff", at=monday + 3 * 86_400, channel="whatsapp", reason="support"),
    ]
    rows = summarise(turns, "week")
    assert [(r["period"], r["channel"], r["turns"]) for r in rows] == [
        ("2025-12-01", "telegram", 1),
        ("2025-12-08", "telegram", 1),
        ("2025-12-08", "whatsapp", 1),
    ]
    weekly = report(turns, DAY1, monday + 7 * 86_400, "week")
    assert [(p["period"], p["turns"]) for p in weekly["periods"]] == [
        ("2025-12-01", 1),
        ("2025-12-08", 2),
    ]
    daily = report(turns, DAY1, DAY1 + 5 * 86_400, "day")
    assert [p["period"][-2:] for p in daily["periods"]] == ["06", "07", "08", "09", "10"]
    assert [p["turns"] for p in daily["periods"]] == [1, 0, 0, 1, 0]
    assert daily["periods"][1]["containment"] is None
    assert [(c["channel"], c["turns"]) for c in daily["channels"]] == [
        ("telegram", 2),
        ("whatsapp", 0 + 1),
    ]
    assert daily["total"]["turns"] == 3 and daily["total"]["handoff_reasons"] == {"support": 1}


def test_intents_beyond_the_top_are_summed() -> None:
    turns = [t(i, "answered", intent=f"made_up_{i}") for i in range(40)]
    intents = summarise(turns)[0]["intents"]
    assert len(intents) == 31 and intents[OTHERS] == 10


def test_turns_spent_waiting_for_a_person_are_not_the_bots() -> None:
    turns = [
        t(1, "answered", confidence=0.9),
        t(1, "handoff", reason="support", intent="human", confidence=0.95),
        TurnStat(1, "telegram", DAY1 + 60, "greet", "handoff", 0.1, None, 0.4, None, True),
    ]
    [row] = summarise(turns)
    assert (row["turns"], row["bot_turns"], row["handoffs"]) == (3, 2, 1)
    assert row["handoff_rate"] == 0.5 and row["handoff_reasons"] == {"support": 1}
    assert row["intents"] == {"order_status": 1, "human": 1}
    assert sum(row["confidence"]) == 2 and row["latency_p95"] == 1.0
