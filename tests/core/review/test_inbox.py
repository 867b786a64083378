"""Why a turn is in the inbox, and live precision from labels."""

from __future__ import annotations

from core.review.inbox import live_precision, reasons_of


def test_reasons_of_a_turn() -> None:
    assert reasons_of("answered", 0.95, None, 0.7) == []
    assert reasons_of("answered", 0.95, "up", 0.7) == []
    assert reasons_of("answered", 0.5, None, 0.7) == ["low_confidence"]
    assert reasons_of("clarified", 0.4, None, 0.7) == ["low_confidence", "clarified"]
    assert reasons_of("fallback", None, "down", 0.7) == ["fallback", "thumbs_down"]
    assert reasons_of("handoff", 0.99, None, 0.7) == ["handoff"]
    assert reasons_of("error", 0.7, None, 0.7) == []


def test_live_precision_counts_right_against_relabelled() -> None:
    got = live_precision(
        [
            ("order_status", "right", 3),
            ("order_status", "relabel", 1),
            ("greet", "relabel", 2),
            ("refund", "example", 5),
            ("refund", "ignore", 1),
            (None, "relabel", 4),
        ]
    )
    assert list(got) == ["greet", "order_status"]
    assert (got["order_status"].right, got["order_status"].wrong) == (3, 1)
    assert got["order_status"].precision == 0.75
    assert got["greet"].precision == 0.0 and got["greet"].reviewed == 2
