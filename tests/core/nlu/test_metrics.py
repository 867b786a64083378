"""Evaluation figures and the threshold choice, on hand-made scores."""

from pathlib import Path

import numpy as np
import pytest

from core.nlu.data import OUT_OF_SCOPE
from core.nlu.metrics import Scores, choose_threshold, confusion_png, format_report, report


def scores() -> Scores:
    gold = ["a", "a", "b", "b", OUT_OF_SCOPE, OUT_OF_SCOPE]
    pred = ["a", "b", "b", "b", "a", "b"]
    conf = np.array([0.9, 0.4, 0.8, 0.7, 0.3, 0.5])
    return Scores(gold, pred, conf)


def test_threshold_is_the_least_expected_cost_of_wrong_answers_and_clarifications() -> None:
    # 100 in-scope answers: right at 0.95, wrong at 0.5; out-of-scope messages at 0.6.
    gold = ["a"] * 100 + [OUT_OF_SCOPE] * 20
    pred = ["a"] * 80 + ["b"] * 20 + ["a"] * 20
    conf = np.array([0.95] * 80 + [0.5] * 20 + [0.6] * 20)
    got = choose_threshold(Scores(gold, pred, conf), n_labels=10)
    # At 0.95 the 20 wrong ones are clarified (cost 0.3 each) and no out-of-scope one is
    # answered; lower, wrong answers (cost 1) or answered out-of-scope messages cost more.
    assert got["threshold"] == pytest.approx(0.95)
    assert got["accuracy_with_threshold"] == pytest.approx(0.8)
    assert got["clarified"] == pytest.approx(0.2)
    assert got["oos_recall"] == pytest.approx(1.0)
    assert got["expected_cost"] == pytest.approx(0.9 * 0.2 * 0.3)
    # Clarifying dearer than a wrong answer: answer everything.
    dear = choose_threshold(Scores(gold, pred, conf), n_labels=10, clarify_cost=1.5)
    assert dear["threshold"] == pytest.approx(0.5)


def test_out_of_scope_examples_weigh_as_their_share_of_traffic_not_their_count() -> None:
    # 5 out-of-scope examples against 100 in scope, one of them as sure as the right answers.
    gold = ["a"] * 100 + [OUT_OF_SCOPE] * 5
    pred = ["a"] * 105
    conf = np.array([0.7] * 50 + [0.9] * 50 + [0.2] * 4 + [0.8])
    rare = choose_threshold(Scores(gold, pred, conf), n_labels=10, out_of_scope_share=0.05)
    assert rare["threshold"] == pytest.approx(0.7)  # 5% of 20% answered: cheaper than asking
    common = choose_threshold(Scores(gold, pred, conf), n_labels=10, out_of_scope_share=0.5)
    assert common["threshold"] == pytest.approx(0.9)


def test_threshold_without_oos_keeps_most_correct_answers() -> None:
    s = Scores(["a"] * 20, ["a"] * 20, np.linspace(0.5, 0.99, 20))
    got = choose_threshold(s, n_labels=10)
    assert 0.5 <= got["threshold"] <= 0.55
    assert got["oos_recall"] is None


def test_of_equally_good_thresholds_the_one_that_answers_most_is_taken() -> None:
    # Ten answers at 0.6, three of them wrong; ten right at 0.9. Clarifying the ten at 0.6
    # costs a little less, but within the noise of twenty answers: the bot answers them.
    gold = ["a"] * 20 + [OUT_OF_SCOPE] * 10
    pred = ["a"] * 7 + ["b"] * 3 + ["a"] * 20
    conf = np.array([0.6] * 10 + [0.9] * 10 + [0.5] * 10)
    got = choose_threshold(Scores(gold, pred, conf), n_labels=10, clarify_cost=0.25)
    assert got["threshold"] == pytest.approx(0.6)
    assert got["expected_cost"] == pytest.approx(0.9 * 3 / 20)


def test_report_fields() -> None:
    rep = report(scores(), threshold=0.6, n_labels=2)
    assert rep["n_examples"] == 6 and rep["n_in_scope"] == 4 and rep["n_out_of_scope"] == 2
    assert rep["accuracy"] == pytest.approx(0.75)
    assert rep["accuracy_with_threshold"] == pytest.approx(0.75)
    assert rep["oos_recall"] == pytest.approx(1.0)
    assert rep["per_intent"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert rep["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert rep["most_confused"] == [{"gold": "a", "predicted": "b", "count": 1}]
    text = format_report(rep)
    assert "accuracy (in scope, argmax): 75.00%" in text and "a -> b: 1" in text


def test_confusion_png(tmp_path: Path) -> None:
    out = tmp_path / "cm.png"
    confusion_png(scores(), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
