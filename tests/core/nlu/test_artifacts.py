"""A broken model directory is refused with its path and the reason, never half-loaded."""

import json
import shutil
from pathlib import Path

import pytest

from core.errors import ModelDirError
from core.nlu import artifacts


@pytest.fixture
def model_copy(fixture_model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(fixture_model_dir, out)
    return out


def test_loads_and_checks(fixture_model_dir: Path) -> None:
    checked = artifacts.check(fixture_model_dir)
    loaded = artifacts.load(fixture_model_dir)
    assert loaded.labels == checked.labels and loaded.threshold == checked.threshold


def test_missing_dir() -> None:
    with pytest.raises(ModelDirError, match=r"/nowhere: no model directory"):
        artifacts.load(Path("/nowhere"))


def test_missing_file(model_copy: Path) -> None:
    (model_copy / "labels.json").unlink()
    with pytest.raises(ModelDirError, match=r"model: not a complete model \(labels.json missing"):
        artifacts.load(model_copy)


def test_truncated_weights(model_copy: Path) -> None:
    w = model_copy / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(ModelDirError, match=r"model\.safetensors: unusable"):
        artifacts.check(model_copy)


def test_garbage_json(model_copy: Path) -> None:
    (model_copy / "threshold.json").write_text("{nope")
    with pytest.raises(ModelDirError, match=r"threshold\.json: unreadable"):
        artifacts.load(model_copy)


def test_labels_not_matching_config(model_copy: Path) -> None:
    (model_copy / "labels.json").write_text(json.dumps(["a", "b", "c"]))
    with pytest.raises(ModelDirError, match=r"config\.json has 4 labels, labels\.json 3"):
        artifacts.load(model_copy)


def test_weights_not_matching_config(model_copy: Path) -> None:
    cfg = json.loads((model_copy / "config.json").read_text())
    cfg["dim"] = cfg["dim"] * 2
    (model_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelDirError, match=r"weights do not fit config\.json"):
        artifacts.check(model_copy)


def test_fingerprint_absent_dir_is_none(tmp_path: Path) -> None:
    assert artifacts.read_fingerprint(tmp_path / "none") is None
    assert artifacts.read_fingerprint(tmp_path) is None  # empty directory
    (tmp_path / "stray.txt").write_text("x")
    with pytest.raises(ModelDirError, match=r"fingerprint\.json: missing"):
        artifacts.read_fingerprint(tmp_path)


def test_save_replaces_atomically(fixture_model_dir: Path, model_copy: Path) -> None:
    loaded = artifacts.load(fixture_model_dir)
    artifacts.save(
        model_copy,
        loaded.net,
        loaded.tokenizer,
        loaded.labels,
        loaded.vocab,
        {"format": 1},
        {"threshold": 0.25},
    )
    assert artifacts.load(model_copy).threshold == 0.25
    assert not model_copy.with_name("model.tmp").exists()
    assert not model_copy.with_name("model.old").exists()
