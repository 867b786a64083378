"""`gateway train` as a release: a candidate better than the live model is deployed, one trained
on corrupted labels is refused with its reasons and the live model stays, broken training data is
refused with file:line before anything is trained, and `model rollback` serves the previous."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from config.settings import load_settings
from core.errors import StartupError
from core.nlu import scores
from core.nlu.config import TINY
from core.nlu.releases import Releases
from gateway.cli import main
from gateway.model_release import releases, retrain

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nlu"


def corrupted(source: Path, out: Path) -> Path:
    """The same examples, each intent's under the next intent's name."""
    doc = yaml.safe_load(source.read_text())
    names = [n for n in doc["intents"] if n != "out_of_scope"]
    moved = dict(zip(names, names[1:] + names[:1], strict=True))
    doc["intents"] = {moved.get(n, n): body for n, body in doc["intents"].items()}
    out.write_text(yaml.safe_dump(doc))
    return out


def live_worse_than(model: Path, rel: Releases) -> Path:
    """The live model: the fixture model with its labels shifted (every answer wrong)."""
    out = rel.new_dir()
    shutil.copytree(model, out)
    labels = json.loads((out / "labels.json").read_text())
    (out / "labels.json").write_text(json.dumps(labels[1:] + labels[:1]))
    rel.deploy(out)
    return out


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    flows = tmp_path / "flows"
    shutil.copytree(FIXTURES, flows)
    for name, value in {
        "FLOWS_DIR": flows,
        "DATA_DIR": tmp_path / "var",
        "MODEL_DIR": tmp_path / "var" / "model",
    }.items():
        monkeypatch.setenv(name, str(value))
    return flows


def test_the_gate_deploys_a_better_model_refuses_a_worse_one_and_rolls_back(
    flows: Path, fixture_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    rel = releases(settings)
    bad_live = live_worse_than(fixture_model_dir, rel)

    good = retrain(settings, config=TINY, progress=False)
    assert good.deployed, good.verdict.summary()
    kept = scores.read(good.candidate)  # the release's held-out figures, for the review inbox
    assert kept is not None and kept.n == good.verdict.candidate.n
    assert kept.accuracy == round(good.verdict.candidate.accuracy, 4)
    assert rel.current() == good.candidate and rel.previous() == bad_live
    assert good.verdict.candidate.accuracy > good.verdict.live.accuracy  # type: ignore[union-attr]

    worse = retrain(
        settings, data=corrupted(flows / "intents.yml", tmp_path / "bad.yml"), config=TINY,
        progress=False,
    )  # fmt: skip
    assert not worse.deployed
    reasons = "\n".join(worse.verdict.reasons)
    assert "accuracy fell" in reasons and "recall fell" in reasons, reasons
    assert rel.current() == good.candidate, "the live model stays"
    assert worse.candidate.is_dir()  # kept for a look

    assert main(["model", "rollback", "--log-level", "error"]) == 0
    assert rel.current() == bad_live and rel.previous() == good.candidate
    assert main(["model", "status", "--log-level", "error"]) == 0
    assert f"current: {bad_live}" in capsys.readouterr().out


def test_broken_training_data_is_refused_with_file_and_line(
    flows: Path, fixture_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    rel = releases(settings)
    live = live_worse_than(fixture_model_dir, rel)
    broken = tmp_path / "broken.yml"
    broken.write_text("intents:\n  greet:\n    examples: [hi, hello\n  bye: [bye]\n")
    with pytest.raises(StartupError, match=rf"{broken}:\d+: not valid YAML"):
        retrain(settings, data=broken, config=TINY, progress=False)
    rc = main(["train", "--data", str(broken), "--no-progress", "--log-level", "error"])
    assert rc == 2 and f"{broken}:" in capsys.readouterr().err
    assert rel.current() == live and sorted(rel.root.iterdir()) == sorted(
        [live, rel.root / "previous"] if (rel.root / "previous").exists() else [live]
    )
