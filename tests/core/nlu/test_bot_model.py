"""The tiny test model of the default bot (tests/support/model.py) is good enough to build
end-to-end tests on; the production settings are measured by bench/nlu.py."""

from pathlib import Path

from core.nlu import artifacts
from core.nlu.data import load_data
from core.nlu.metrics import Scores, report
from core.nlu.predictor import Predictor

FLOWS = Path(__file__).resolve().parents[3] / "flows"


def test_tiny_bot_model_on_the_heldout_split(trained_model_dir: Path) -> None:
    loaded = artifacts.load(trained_model_dir)
    held = load_data(FLOWS / "heldout")
    probs = Predictor(loaded).predict([e.text for e in held])
    rep = report(Scores.of(held, probs, loaded.labels), loaded.threshold, len(loaded.labels))
    assert rep["accuracy"] >= 0.85, rep["most_confused"]
    assert "out_of_scope" not in loaded.labels
