"""How an encoder is trained, by the kind of base it starts from: a pretrained base a few
epochs on every thread with early stopping; the from-scratch fallback its long small-data
schedule. Batches are padded to their own longest text."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from config.settings import SettingsError, load_settings
from core.nlu import artifacts, bf16
from core.nlu.config import TINY, TrainConfig
from core.nlu.data import load_flows_dir
from core.nlu.train import _Best, _Encoded, batches, train
from gateway.nlu_loader import train_config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"


def test_the_schedule_is_chosen_by_the_kind_of_base() -> None:
    cfg = TrainConfig()
    tuned = cfg.schedule("pretrained", 15_000)
    assert (tuned.epochs, tuned.patience, tuned.lr, tuned.refit) == (6, 2, 1e-4, False)
    assert tuned.grouped and not cfg.schedule("scratch", 900).grouped
    assert tuned.batch_size == cfg.pretrained_batch_size
    # 900 examples are 29 steps an epoch: 300 steps need 11 epochs
    assert cfg.schedule("pretrained", 900).epochs == 11
    # ... all of which run: early stopping on a small bot's hundred validation examples is noise
    assert cfg.schedule("pretrained", 900).min_epochs == 11
    assert tuned.min_epochs == 1
    scratch = cfg.schedule("scratch", 900)
    # 900 examples are 15 steps an epoch: min_steps asks for 40 epochs, half of them patience
    assert (scratch.epochs, scratch.patience, scratch.lr, scratch.refit) == (40, 20, 5e-4, True)
    assert cfg.schedule("scratch", 15_000).epochs == cfg.epochs


def test_early_stopping_stops_after_patience_and_keeps_the_best_state() -> None:
    scores = iter([(1.0, 0.5, 0.9), (1.0, 0.7, 0.5), (1.0, 0.7, 0.6), (1.0, 0.6, 0.4)])
    seen: list[tuple[int, float]] = []
    best = _Best(lambda _enc: next(scores), 2, lambda e, a: seen.append((e, a)))
    net = torch.nn.Linear(2, 2)
    stops = []
    for epoch in range(1, 5):
        with torch.no_grad():
            net.weight.fill_(epoch)
        stops.append(best(epoch, net))  # type: ignore[arg-type]
    assert stops == [False, False, False, True]
    assert (best.epoch, best.acc) == (2, 0.7)
    assert best.state is not None and float(best.state["weight"][0, 0]) == 2.0
    assert [e for e, _ in seen] == [1, 2, 3, 4]


def test_early_stopping_waits_for_the_minimum_epochs() -> None:
    best = _Best(lambda _enc: (1.0, 0.5, 0.9), 1, None, min_epochs=3)
    net = torch.nn.Linear(2, 2)
    assert [best(e, net) for e in (1, 2, 3, 4)] == [False, False, True, True]  # type: ignore[arg-type]
    assert best.epoch == 1


def test_batches_are_padded_to_their_own_longest_text(fixture_model_dir: Path) -> None:
    tok = artifacts.load(fixture_model_dir).tokenizer
    texts = ["hi", "where is my order from last week please", "hello there", "reset password"]
    data = _Encoded(tok, texts, 40)
    ids, mask = data.batch([0, 2])
    assert ids.shape[1] == max(len(data.ids[0]), len(data.ids[2])) < len(data.ids[1])
    assert mask.sum(1).tolist() == [len(data.ids[0]), len(data.ids[2])]
    ids, _ = data.batch([1, 3])
    assert ids.shape[1] == len(data.ids[1])


def test_grouped_batches_cover_each_example_once_with_similar_lengths() -> None:
    lengths = [(7 * i) % 40 + 3 for i in range(2_000)]  # 3..42 tokens, interleaved

    def epoch(grouped: bool, seed: int = 5) -> list[list[int]]:
        return batches(lengths, 32, torch.Generator().manual_seed(seed), grouped=grouped)

    def padded(bs: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in bs)

    grouped, plain = epoch(True), epoch(False)
    for bs in (grouped, plain):
        assert sorted(i for b in bs for i in b) == list(range(2_000))
        assert len(bs) == -(-2_000 // 32)
    assert epoch(True) == grouped, "the same seed gives the same epoch"
    assert epoch(True, seed=6) != grouped
    # random batches pad nearly every text to ~42 tokens; grouped ones to about its own length
    assert padded(grouped) < 0.6 * padded(plain)
    assert padded(grouped) < 1.1 * sum(lengths)
    # and the long batches are not all at the end of the epoch
    longest = [max(lengths[i] for i in b) for b in grouped]
    assert max(longest[: len(longest) // 2]) > 35


@pytest.fixture
def base_checkpoint(fixture_model_dir: Path, tmp_path: Path) -> Path:
    """A local checkpoint standing in for a pretrained base (a trained model's encoder)."""
    loaded = artifacts.load(fixture_model_dir)
    base = tmp_path / "base"
    loaded.net.encoder.save_pretrained(base)
    loaded.tokenizer.save_pretrained(base)
    return base


def test_a_pretrained_base_trains_few_epochs_on_every_thread(
    base_checkpoint: Path, tmp_path: Path
) -> None:
    before = torch.get_num_threads()
    threads: list[int] = []
    config = TINY.with_(
        base_model=str(base_checkpoint),
        threads=2,
        small_threads=1,
        pretrained_epochs=3,
        pretrained_min_steps=0,
    )
    try:
        torch.set_num_threads(1)
        res = train(
            load_flows_dir(FIXTURES),
            tmp_path / "m",
            config,
            progress=False,
            on_epoch=lambda e, a: threads.append(torch.get_num_threads()),
        )
        assert torch.get_num_threads() == 1, "the caller's thread count is given back"
    finally:
        torch.set_num_threads(before)
    assert res.encoder == "pretrained"
    assert 1 <= res.epochs <= 3 and len(threads) == res.epochs
    assert set(threads) == {2}, "all NLU_THREADS, not the small encoder's one"
    fp = artifacts.read_fingerprint(tmp_path / "m")
    assert fp is not None and fp["ensemble"]["refit_with_validation"] is False


def test_bf16_autocast_runs_matrix_products_in_bfloat16() -> None:
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with bf16.autocast(True):
        assert layer(x).dtype == torch.bfloat16
    with bf16.autocast(False):
        assert layer(x).dtype == torch.float32
    assert bf16.wanted(True, "scratch") and not bf16.wanted(False, "pretrained")
    assert not bf16.wanted(None, "scratch"), "the fallback keeps its float32 schedule"
    assert bf16.wanted(None, "pretrained") == bf16.native()


def test_a_pretrained_base_fine_tunes_in_bf16_when_asked(
    base_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[bool] = []
    real = bf16.autocast

    def counting(enabled: bool):  # type: ignore[no-untyped-def]
        steps.append(enabled)
        return real(enabled)

    monkeypatch.setattr(bf16, "autocast", counting)
    config = TINY.with_(
        base_model=str(base_checkpoint), bf16=True, pretrained_epochs=2, pretrained_min_steps=0
    )
    res = train(load_flows_dir(FIXTURES), tmp_path / "m", config, progress=False)
    assert res.encoder == "pretrained" and steps and all(steps)
    fp = artifacts.read_fingerprint(tmp_path / "m")
    assert fp is not None and fp["bf16"] is True
    assert fp["int8"]["n_examples"] > 0, "the model trained in bf16 is saved and checked in fp32"


def test_the_bf16_setting_reaches_training() -> None:
    for raw, want in (("auto", None), ("on", True), ("true", True), ("off", False), ("no", False)):
        assert train_config(load_settings(nlu_train_bf16=raw)).bf16 is want
    with pytest.raises(SettingsError, match="NLU_TRAIN_BF16"):
        load_settings(nlu_train_bf16="half")
