"""Training: the offline fallback path, the files of a model directory, seeds and the split."""

import json
from pathlib import Path

from safetensors.torch import load_file
from structlog.testing import capture_logs

from core.nlu import artifacts
from core.nlu.config import TINY
from core.nlu.data import OUT_OF_SCOPE, Example, load_flows_dir
from core.nlu.train import split, train, typo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"


def test_model_dir_has_every_file(fixture_model_dir: Path) -> None:
    for name in artifacts.FILES:
        assert (fixture_model_dir / name).is_file(), name
    labels = json.loads((fixture_model_dir / "labels.json").read_text())
    assert labels == ["greet", "order_status", "password_reset", "refund"]
    assert OUT_OF_SCOPE not in labels
    fp = json.loads((fixture_model_dir / "fingerprint.json").read_text())
    assert fp["encoder"] == "scratch" and len(fp["data"]) == 64
    assert fp["train"]["layers"] == TINY.layers
    thr = json.loads((fixture_model_dir / "threshold.json").read_text())
    assert 0.0 < thr["threshold"] < 1.0
    assert "oos_recall" in thr  # the fixture has out_of_scope examples to tune on


def test_offline_fallback_logs_one_line_and_seeds_repeat(tmp_path: Path) -> None:
    examples = load_flows_dir(FIXTURES)
    small = TINY.with_(epochs=2)
    with capture_logs() as logs:
        first = train(examples, tmp_path / "a", small, progress=False)
    # One warning; the cross-validation folds, which build the encoder again, say it at debug.
    fallback = [
        e
        for e in logs
        if e["event"] == "nlu.base_model_unavailable" and e["log_level"] == "warning"
    ]
    assert len(fallback) == 1
    assert fallback[0]["base_model"] == "distilbert-base-uncased"
    assert "from scratch" in fallback[0]["fallback"]
    assert first.encoder == "scratch"
    train(examples, tmp_path / "b", small, progress=False)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and a, "two models with weights (an empty file compares equal)"
    assert all(bool((a[k] == b[k]).all()) for k in a)


def test_training_gives_the_thread_count_back(tmp_path: Path) -> None:
    """The small encoder trains on its own thread count (1); serving after an automatic
    training in the same process must not inherit it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        small = TINY.with_(epochs=1, dim=128, threads=2, small_dim=64, small_threads=1)
        train(load_flows_dir(FIXTURES), tmp_path / "m", small, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_local_checkpoint_dir_is_fine_tuned(fixture_model_dir: Path, tmp_path: Path) -> None:
    """Any local checkpoint directory works as a base model (here: a transformers checkpoint
    saved from a trained model's encoder), without the from-scratch fallback."""
    loaded = artifacts.load(fixture_model_dir)
    base = tmp_path / "base"
    loaded.net.encoder.save_pretrained(base)
    loaded.tokenizer.save_pretrained(base)
    examples = [e for e in load_flows_dir(FIXTURES) if e.intent != "refund"]
    with capture_logs() as logs:
        res = train(
            examples, tmp_path / "ft", TINY.with_(base_model=str(base), epochs=1), progress=False
        )
    assert res.encoder == "pretrained"
    assert not [e for e in logs if e["event"] == "nlu.base_model_unavailable"]
    assert artifacts.load(tmp_path / "ft").labels == ["greet", "order_status", "password_reset"]


def test_split_is_stratified_and_deterministic() -> None:
    data = [Example(f"a{i}", "a") for i in range(20)] + [Example(f"b{i}", "b") for i in range(10)]
    data += [Example("lonely", "c")]
    train_set, val = split(data, 0.2, seed=1)
    assert sorted(e.intent for e in val) == ["a"] * 4 + ["b"] * 2
    assert Example("lonely", "c") in train_set
    assert (train_set, val) == split(data, 0.2, seed=1)


def test_typo_changes_one_character() -> None:
    import random

    rng = random.Random(0)
    for _ in range(20):
        t = typo("where is my order", rng)
        assert abs(len(t) - len("where is my order")) <= 1


def test_small_bots_get_the_small_encoder() -> None:
    from core.nlu.config import TrainConfig

    cfg = TrainConfig()
    assert cfg.for_size(900).dim == 64 and cfg.for_size(900).layers == cfg.layers
    assert cfg.for_size(15_000) == cfg
    assert TINY.for_size(10) == TINY
