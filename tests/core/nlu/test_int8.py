"""int8 serving: checked at training against fp32 on held-out examples, served under `auto`
only when it keeps the accuracy and the encoder is wide enough to gain."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

from config.settings import SettingsError, load_settings
from core.nlu import artifacts, int8
from core.nlu.config import TINY
from core.nlu.data import load_flows_dir
from core.nlu.parser import ModelParser, ServeConfig
from core.nlu.train import _net_probs, split, train
from gateway.nlu_loader import serve_config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer encoder of 256 dims: wide enough for `auto` to serve it in int8."""
    out = tmp_path_factory.mktemp("wide") / "model"
    config = TINY.with_(dim=256, heads=4, hidden=512, small_below=0, epochs=4, cv_folds=0)
    train(load_flows_dir(FIXTURES), out, config, progress=False)
    return out


def quantized(net: torch.nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) for m in net.modules())


def test_training_records_the_check_and_auto_serves_int8(wide_model: Path) -> None:
    fp = artifacts.read_fingerprint(wide_model)
    assert fp is not None
    check = fp["int8"]
    assert check["n_examples"] > 0 and check["passed"] and check["served"]
    assert check["accuracy_int8"] >= check["accuracy_fp32"] - int8.MAX_LOSS
    assert quantized(artifacts.load(wide_model, quantize=None).net)
    assert not quantized(artifacts.load(wide_model, quantize=False).net)


async def test_the_int8_model_answers_as_the_fp32_one(wide_model: Path) -> None:
    held = load_flows_dir(FIXTURES / "heldout")
    answers = {}
    for setting in (False, None):
        parser = ModelParser(wide_model, ServeConfig(threads=1, quantize=setting))
        await parser.start()
        try:
            assert quantized(parser.predictor.loaded.net) is (setting is None)  # type: ignore[union-attr]
            answers[setting] = [(await parser.parse(e.text)).intent for e in held]
        finally:
            await parser.close()
    same = sum(a == b for a, b in zip(answers[False], answers[None], strict=True))
    assert same >= 0.95 * len(held)


def test_a_narrow_encoder_stays_fp32_under_auto(tmp_path: Path) -> None:
    train(load_flows_dir(FIXTURES), tmp_path / "m", TINY.with_(epochs=2), progress=False)
    fp = artifacts.read_fingerprint(tmp_path / "m")
    assert fp is not None and fp["train"]["dim"] < int8.MIN_DIM
    assert fp["int8"]["n_examples"] > 0 and not fp["int8"]["served"]
    assert not quantized(artifacts.load(tmp_path / "m", quantize=None).net)
    assert quantized(artifacts.load(tmp_path / "m", quantize=True).net)


def test_the_check_fails_when_int8_loses_accuracy(wide_model: Path) -> None:
    """A weight outlier fp32 never uses (a hidden unit the classifier ignores) sets the int8
    scale of its whole matrix: every other weight rounds to zero and int8 answers one class."""
    loaded = artifacts.load(wide_model)
    net = copy.deepcopy(loaded.net)
    head = net.encoder
    with torch.no_grad():
        head.pre_classifier.weight[0].fill_(1e4)  # type: ignore[union-attr, operator]
        head.classifier.weight[:, 0] = 0.0  # type: ignore[union-attr, index]
    net.mix.fill_(1.0)  # the encoder alone, so the n-gram half cannot hide the loss
    examples = [*load_flows_dir(FIXTURES), *load_flows_dir(FIXTURES / "heldout")]
    _, held = split(examples, 0.5, 1)
    probs = _net_probs(loaded.tokenizer, loaded.vocab, loaded.max_len)
    result = int8.check(net, probs, held, loaded.labels)
    assert result["accuracy_fp32"] - result["accuracy_int8"] > int8.MAX_LOSS
    assert not result["passed"] and not result["served"]
    assert not quantized(net), "the network checked stays fp32"


def test_the_setting() -> None:
    assert int8.wanted(True, {}) and not int8.wanted(False, {"int8": {"served": True}})
    assert int8.wanted(None, {"int8": {"served": True}}) and not int8.wanted(None, {})
    for raw, want in (("auto", None), ("true", True), ("on", True), ("0", False), ("off", False)):
        assert serve_config(load_settings(nlu_quantize=raw)).quantize is want
    with pytest.raises(SettingsError, match="NLU_QUANTIZE"):
        load_settings(nlu_quantize="sometimes")
