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


def test_threshold_balances_accuracy_and_oos_recall() -> None:
    got = choose_threshold(scores(), n_labels=2)
    # at 0.7: in-scope correct and kept 3/4, both oos (0.3, 0.5) rejected
    assert got["threshold"] == pytest.approx(0.7)
    assert got["accuracy_with_threshold"] == pytest.approx(0.75)
    assert got["oos_recall"] == pytest.approx(1.0)


def test_threshold_without_oos_keeps_most_correct_answers() -> None:
    s = Scores(["a"] * 20, ["a"] * 20, np.linspace(0.5, 0.99, 20))
    got = choose_threshold(s, n_labels=10)
    assert 0.5 <= got["threshold"] <= 0.55


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
