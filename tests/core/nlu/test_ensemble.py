"""The ensemble: the n-gram logistic regression is fitted on its own, stored in the model
directory with its IDF weights, and averaged with the encoder at the weight validation chose."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from core.errors import ModelDirError
from core.nlu import artifacts
from core.nlu.calibration import calibrate
from core.nlu.config import TrainConfig
from core.nlu.ngrams import NgramVocab
from core.nlu.predictor import Predictor
from core.nlu.train import best_mix, pick


def test_model_dir_describes_the_ensemble(fixture_model_dir: Path) -> None:
    fp = json.loads((fixture_model_dir / "fingerprint.json").read_text())
    w = fp["ensemble"]["encoder_weight"]
    assert w in TrainConfig().mix_grid
    assert "logistic regression" in fp["ensemble"]["sparse"]
    assert fp["ensemble"]["refit_with_validation"] is True
    loaded = artifacts.load(fixture_model_dir)
    assert float(loaded.net.mix) == pytest.approx(w)
    assert bool(loaded.net.ngram.weight.abs().sum() > 0)  # the fitted regression is there
    assert loaded.vocab.idf[0] == 0.0 and min(loaded.vocab.idf[1:]) >= 1.0


def test_forward_averages_the_two_models(fixture_model_dir: Path) -> None:
    loaded = artifacts.load(fixture_model_dir)
    pred = Predictor(loaded)
    batch = pred.encode(["where is my order", "reset my password"])
    net = loaded.net
    with torch.inference_mode():
        dense = torch.softmax(net.encoder_logits(batch.input_ids, batch.attention_mask), -1)
        sparse = torch.softmax(net.sparse_logits(batch.bag), -1)
    w = float(net.mix)
    mixed = calibrate(w * dense + (1 - w) * sparse, loaded.temperature)
    assert torch.allclose(pred.forward(batch), mixed, atol=1e-5)
    assert torch.allclose(pred.forward(batch).sum(-1), torch.ones(2), atol=1e-5)


def test_idf_weights_are_checked(fixture_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    shutil.copytree(fixture_model_dir, out)
    data = json.loads((out / "ngrams.json").read_text())
    data["idf"] = data["idf"][:-1]
    (out / "ngrams.json").write_text(json.dumps(data))
    with pytest.raises(ModelDirError, match=r"ngrams\.json: \d+ IDF numbers for \d+ n-grams"):
        artifacts.check(out)
    (out / "ngrams.json").write_text(json.dumps(data["grams"]))  # the old format, a bare list
    with pytest.raises(ModelDirError, match=r"ngrams\.json: expected"):
        artifacts.check(out)


def test_rare_grams_weigh_more_and_groups_share_the_norm() -> None:
    vocab = NgramVocab.fit(["order status", "order refund", "order help"])
    weights = dict(zip(*vocab.vector("order refund"), strict=True))
    assert weights[vocab.index["w:refund"]] > weights[vocab.index["w:order"]]
    char = sum(w * w for i, w in weights.items() if vocab.is_char[i])
    assert char == pytest.approx(1.0)


def test_best_mix_prefers_accuracy_then_log_loss() -> None:
    gold = torch.tensor([0, 1])
    dense = torch.tensor([[0.9, 0.1], [0.6, 0.4]])  # wrong on the second
    sparse = torch.tensor([[0.6, 0.4], [0.2, 0.8]])
    w, acc, _ = best_mix(dense, sparse, gold, (0.25, 0.5, 0.75))
    assert acc == 1.0 and w in (0.25, 0.5)
    assert best_mix(dense, None, gold, (0.5,))[:2] == (1.0, 0.5)


def test_a_noise_level_accuracy_gain_does_not_buy_a_much_worse_log_loss() -> None:
    # one example in a thousand better, log-loss four times worse: not chosen
    scored = [(0.854, 2.1, "epoch 1"), (0.851, 0.58, "epoch 30"), (0.80, 0.50, "epoch 40")]
    assert pick(scored, 1000) == (0.851, 0.58, "epoch 30")
    # a gain well beyond the noise still wins
    assert pick([(0.95, 2.1, "a"), (0.85, 0.58, "b")], 1000)[2] == "a"


def test_bag_weights_are_the_regressions_features() -> None:
    """Serving (the embedding bag) sees the inputs the regression was fitted on."""
    from core.nlu.sparse import features

    vocab = NgramVocab.fit(["where is my order", "order refund please", "hello", "hi there"])
    texts = ["where is my refund", "😀", "", "hello hello there"]
    bag = vocab.bag(texts)
    dense = torch.from_numpy(features(vocab, texts).toarray()).float()
    rows = torch.repeat_interleave(
        torch.arange(len(texts)), torch.diff(bag.offsets, append=torch.tensor([len(bag.ids)]))
    )
    rebuilt = torch.zeros_like(dense).index_put_((rows, bag.ids), bag.weights, accumulate=True)
    rebuilt[:, 0] = 0.0  # the "no known n-gram" slot carries nothing in either
    dense[:, 0] = 0.0
    assert torch.allclose(rebuilt, dense, atol=1e-6)
