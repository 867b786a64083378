"""`python -m gateway train` and `python -m gateway nlu eval` end to end (offline fallback)."""

import json
from pathlib import Path

import pytest

from gateway.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"


def test_train_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    rc = main(
        [
            "train",
            "--data",
            str(FIXTURES / "intents.yml"),
            "--out",
            str(model),
            "--no-progress",
            "--log-level",
            "error",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "trained 4 intents (scratch encoder" in out and str(model) in out
    report = tmp_path / "eval.json"
    rc = main(
        [
            "nlu",
            "eval",
            "--model",
            str(model),
            "--data",
            str(FIXTURES / "heldout"),
            "--json",
            str(report),
            "--log-level",
            "error",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "accuracy (in scope, argmax):" in printed and "out-of-scope recall at" in printed
    rep = json.loads(report.read_text())
    for key in (
        "accuracy",
        "accuracy_with_threshold",
        "macro_f1",
        "oos_recall",
        "threshold",
        "n_examples",
        "per_intent",
    ):
        assert key in rep
    assert rep["n_examples"] == 14 and rep["n_out_of_scope"] == 2
    assert rep["accuracy"] >= 0.75
    assert report.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_eval_of_a_broken_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    rc = main(["nlu", "eval", "--model", str(tmp_path / "none"), "--data", str(FIXTURES)])
    assert rc == 2
    assert f"gateway: {tmp_path / 'none'}: no model directory" in capsys.readouterr().err
