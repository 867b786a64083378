"""A release's held-out figures: written, read back, and none for a release without them."""

from __future__ import annotations

from pathlib import Path

from core.nlu import scores
from core.nlu.data import Example
from core.nlu.gate import Evaluation, score


def test_figures_written_and_read_back(tmp_path: Path) -> None:
    scoped = [Example("a", "x"), Example("b", "x"), Example("c", "y"), Example("d", "y")]
    figures = score(scoped, ["x", "y", "y", None])
    assert figures.accuracy == 0.5 and figures.n == 4
    assert figures.recall == {"x": 0.5, "y": 0.5}
    assert figures.precision == {"x": 1.0, "y": 0.5}
    scores.write(tmp_path, figures)
    assert scores.read(tmp_path) == scores.Figures(
        0.5, 4, {"x": 1.0, "y": 0.5}, {"x": 0.5, "y": 0.5}
    )
    assert scores.read(tmp_path / "nowhere") is None
    (tmp_path / scores.FILE).write_text('{"accuracy": "high"}')
    assert scores.read(tmp_path) is None
    assert Evaluation(0.0, {}, 0).precision == {}
