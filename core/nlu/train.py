"""Training: a pretrained DistilBERT (or any local checkpoint) fine-tuned for sequence
classification, or, when that cannot be loaded, a DistilBERT initialised from scratch with a
WordPiece vocabulary trained on the examples; either is ensembled with a TF-IDF n-gram logistic
regression fitted on its own."""

from __future__ import annotations

import copy
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import structlog
import torch
from torch import nn
from tqdm import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from core.errors import NluDataError
from core.nlu import artifacts, bf16, int8, sparse
from core.nlu.calibration import calibrate, fit_temperature
from core.nlu.config import FORMAT, Schedule, TrainConfig
from core.nlu.data import Example, data_hash, in_scope, out_of_scope
from core.nlu.hub import base_model_source, fetch
from core.nlu.metrics import Scores, choose_threshold
from core.nlu.network import IntentNet
from core.nlu.ngrams import NgramVocab
from core.nlu.predictor import Batch, FastEncoder, forward
from core.nlu.tokenizer import train_wordpiece

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What a training run produced (the model directory, its labels, which encoder) and how
    well it did on its validation data."""

    model_dir: Path
    labels: list[str]
    encoder: str
    """"pretrained" or "scratch"."""
    epochs: int
    val_accuracy: float
    threshold: dict[str, Any]
    seconds: float


def fingerprint(examples: Sequence[Example], config: TrainConfig) -> dict[str, Any]:
    """What decides whether a saved model still fits the bot: the data and the base model."""
    return {"format": FORMAT, "data": data_hash(examples), "base_model": config.base_model}


def matches(saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(saved.get(k) == v for k, v in wanted.items())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Stratified: each intent gives `fraction` of its examples (at least one when it has 3+)."""
    rng = random.Random(seed)
    by: dict[str, list[Example]] = {}
    for e in examples:
        by.setdefault(e.intent, []).append(e)
    train: list[Example] = []
    val: list[Example] = []
    for name in sorted(by):
        group = by[name][:]
        rng.shuffle(group)
        k = round(len(group) * fraction) if len(group) >= 3 else 0
        k = max(k, 1) if len(group) >= 3 else 0
        val.extend(group[:k])
        train.extend(group[k:])
    return train, val


_KEYS = "qwertyuiopasdfghjklzxcvbnm"


def typo(text: str, rng: random.Random) -> str:
    """One random character edit (drop, swap, replace or insert) inside a word."""
    spots = [i for i, c in enumerate(text) if c.isalpha()]
    if len(spots) < 4:
        return text
    i = rng.choice(spots[1:-1])
    op = rng.randrange(4)
    if op == 0:
        return text[:i] + text[i + 1 :]
    if op == 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if op == 2:
        return text[:i] + rng.choice(_KEYS) + text[i + 1 :]
    return text[:i] + rng.choice(_KEYS) + text[i:]


def build_encoder(
    config: TrainConfig, texts: Sequence[str], labels: list[str], *, quiet: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    id2label = dict(enumerate(labels))
    label2id = {n: i for i, n in id2label.items()}
    source = base_model_source(config.base_model, config.hub)
    try:
        path = fetch(source, config.hub)
        tok = cast(
            PreTrainedTokenizerBase, AutoTokenizer.from_pretrained(path, local_files_only=True)
        )
        enc = AutoModelForSequenceClassification.from_pretrained(
            path,
            local_files_only=True,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=True,
        )
        return cast(PreTrainedModel, enc), tok, "pretrained"
    except Exception as exc:  # noqa: BLE001 - the hub client's errors are of many families
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        (log.debug if quiet else log.warning)(
            "nlu.base_model_unavailable",
            base_model=config.base_model,
            source=source.why,
            reason=reason,
            fallback=f"DistilBERT from scratch ({config.layers} layers, {config.dim} dim) "
            f"with a WordPiece vocabulary trained on the examples",
        )
    tok = train_wordpiece(texts, config.vocab_size)
    labelled: dict[str, Any] = {
        "num_labels": len(labels),
        "id2label": id2label,
        "label2id": label2id,
        "pad_token_id": tok.pad_token_id,
    }
    cfg = DistilBertConfig(
        vocab_size=len(tok),
        dim=config.dim,
        n_layers=config.layers,
        n_heads=config.heads,
        hidden_dim=config.hidden,
        max_position_embeddings=max(64, config.max_len),
        dropout=config.dropout,
        attention_dropout=config.dropout,
        seq_classif_dropout=config.dropout,
        **labelled,
    )
    return DistilBertForSequenceClassification(cfg), tok, "scratch"


class _Encoded:
    """The training texts tokenized once; batches are padded on the fly."""

    def __init__(self, tok: PreTrainedTokenizerBase, texts: Sequence[str], n: int):
        self.ids: list[list[int]] = tok(list(texts), truncation=True, max_length=n)["input_ids"]
        self.pad = int(tok.pad_token_id or 0)

    def lengths(self) -> list[int]:
        return [len(seq) for seq in self.ids]

    def batch(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(self.ids[i]) for i in idx)
        ids = torch.full((len(idx), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            seq = self.ids[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return ids, mask


GROUP_CHUNK = 50
"""Batches per chunk that `batches` sorts by length (as transformers' length-grouped sampler):
enough for lengths to repeat, few enough that an epoch still mixes short and long batches."""


def batches(
    lengths: Sequence[int], size: int, gen: torch.Generator, *, grouped: bool
) -> list[list[int]]:
    """One epoch's batches of example indices, in a random order drawn from `gen`. `grouped`:
    the shuffled examples are cut into chunks of `GROUP_CHUNK` batches, each chunk sorted by
    length before it is cut into batches, and the batches shuffled again; as many batches as
    random ones, each of texts of about the same length."""
    order = torch.randperm(len(lengths), generator=gen).tolist()
    if not grouped:
        return [order[s : s + size] for s in range(0, len(order), size)]
    chunk = size * GROUP_CHUNK
    out: list[list[int]] = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c : c + chunk], key=lambda i: lengths[i])
        out += [part[s : s + size] for s in range(0, len(part), size)]
    return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]


@dataclass(frozen=True, slots=True)
class _Sparse:
    """A fitted n-gram regression: its vocabulary and weights."""

    vocab: NgramVocab
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def fit(cls, data: Sequence[Example], labels: list[str], config: TrainConfig) -> _Sparse:
        texts = [e.text for e in data]
        vocab = NgramVocab.fit(texts, config.ngram_min_count, config.ngram_max)
        y = [labels.index(e.intent) for e in data]
        w, b = sparse.fit(vocab, texts, y, len(labels), config.sparse_c, config.sparse_iter)
        return cls(vocab, w, b)

    def probs(self, texts: Sequence[str]) -> torch.Tensor:
        return sparse.probs(self.vocab, self.weight, self.bias, texts)


_C = TypeVar("_C")


def best_mix(
    dense: torch.Tensor, sparse_p: torch.Tensor | None, gold: torch.Tensor, grid: Sequence[float]
) -> tuple[float, float, float]:
    """(encoder weight, accuracy, log-loss): the best average on validation (see `pick`)."""
    if not len(gold):
        return 1.0, 0.0, 0.0
    scored = []
    for w in grid if sparse_p is not None else (1.0,):
        p = dense if sparse_p is None else w * dense + (1 - w) * sparse_p
        acc = float((p.argmax(-1) == gold).float().mean())
        nll = float(-torch.log(p[torch.arange(len(gold)), gold].clamp_min(1e-9)).mean())
        scored.append((acc, nll, w))
    acc, nll, w = pick(scored, len(gold))
    return w, acc, nll


def pick(scored: Sequence[tuple[float, float, _C]], n: int) -> tuple[float, float, _C]:
    """The (accuracy, log-loss, choice) with the lowest log-loss among those whose accuracy is
    within one standard error of the best. Accuracy alone rewards noise: a barely trained
    encoder at a high weight can flip two or three of a thousand validation answers while its
    log-loss is several times worse, and then the served model is that encoder and its
    temperature and threshold are fitted to near-uniform probabilities."""
    best = max(a for a, _, _ in scored)
    margin = (best * (1 - best) / max(n, 1)) ** 0.5
    near = [s for s in scored if s[0] >= best - margin - 1e-12]
    return min(near, key=lambda s: (s[1], -s[0]))


def train(
    examples: Sequence[Example],
    out: Path,
    config: TrainConfig | None = None,
    *,
    validation: Sequence[Example] | None = None,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Trains on the in-scope examples (out-of-scope ones only tune the threshold) and writes
    the model directory. Without `validation`, a stratified share of the data is held out.
    The n-gram regression is fitted first; the encoder is then trained with early stopping on
    the validation accuracy of the ensemble (at its best encoder weight)."""
    config = config or TrainConfig()
    started = time.perf_counter()
    seed_everything(config.seed)
    inside = in_scope(examples)
    labels = sorted({e.intent for e in inside})
    if len(labels) < 2:
        raise NluDataError("training needs at least two intents with examples")
    threads = torch.get_num_threads()
    try:
        chosen = None
        if validation is None:
            chosen = _train_cv(examples, labels, config, progress, on_epoch)
        if chosen is None:
            chosen = _train_split(examples, labels, config, validation, progress, on_epoch)
    finally:
        # the small encoder trains on its own thread count; what runs next in this process
        # (serving after `serve` trained, a benchmark's bare forward pass) gets its own back
        torch.set_num_threads(threads)
    config, fitted, encoder, tok, kind = (
        chosen.config,
        chosen.fitted,
        chosen.encoder,
        chosen.tok,
        chosen.kind,
    )
    epoch, best, best_epoch, best_w = (
        chosen.epochs_run,
        chosen.accuracy,
        chosen.epoch,
        chosen.weight,
    )
    threshold, refit = chosen.threshold, chosen.refit
    vocab = fitted.vocab if fitted else NgramVocab({})
    net = IntentNet(encoder, len(vocab), len(labels))
    if fitted:
        sparse.install(net, fitted.weight, fitted.bias)
        net.mix.fill_(best_w)
    net.eval()
    check_set = random.Random(config.seed).sample(chosen.check, min(len(chosen.check), 3000))
    int8_check = int8.check(net, _net_probs(tok, vocab, config.max_len), check_set, labels)
    fp = {
        **fingerprint(examples, config),
        "encoder": kind,
        "train": config.as_dict(),
        "bf16": bf16.wanted(config.bf16, kind),
        "epochs_run": epoch,
        "best_epoch": best_epoch,
        "val_accuracy": best,
        "ensemble": {
            "encoder_weight": best_w,
            "sparse": f"TF-IDF n-gram logistic regression, C={config.sparse_c}" if fitted else None,
            "refit_with_validation": refit,
        },
        "int8": int8_check,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    artifacts.save(out, net, tok, labels, vocab, fp, threshold)
    seconds = time.perf_counter() - started
    log.info(
        "nlu.trained",
        model_dir=str(out),
        encoder=kind,
        epochs=epoch,
        val_accuracy=best,
        encoder_weight=best_w,
        threshold=threshold["threshold"],
        int8=int8_check.get("served"),
        seconds=round(seconds, 1),
    )
    return TrainResult(out, labels, kind, epoch, best, threshold, seconds)


@dataclass(slots=True)
class _Chosen:
    """Both models fitted on the examples, and what validation chose for the ensemble."""

    config: TrainConfig
    fitted: _Sparse | None
    encoder: PreTrainedModel
    tok: PreTrainedTokenizerBase
    kind: str
    epochs_run: int
    accuracy: float
    epoch: int
    weight: float
    threshold: dict[str, Any]
    refit: bool
    check: list[Example]
    """Examples to compare the fp32 and int8 models on (the validation split when there is
    one)."""


def _train_cv(
    examples: Sequence[Example],
    labels: list[str],
    config: TrainConfig,
    progress: bool,
    on_epoch: Callable[[int, float], None] | None,
) -> _Chosen | None:
    """Small data and a from-scratch encoder: the epoch, the ensemble weight and the threshold
    come from k-fold out-of-fold predictions, then both models are fitted on every example.
    None when this does not apply (a loadable base model, `cv_folds` < 2, large data)."""
    inside = in_scope(examples)
    if config.cv_folds < 2 or len(inside) >= config.small_below:
        return None
    config = config.for_size(len(inside))
    torch.set_num_threads(config.threads)
    texts = [e.text for e in inside]
    encoder, tok, kind = build_encoder(config, texts, labels)
    if kind != "scratch":  # fine-tuning a pretrained base k more times is too slow
        return None
    accuracy, epoch, weight, threshold = _cross_validate(
        examples, labels, config, on_epoch, progress
    )
    fitted = _Sparse.fit(inside, labels, config) if config.ngrams else None
    encoder, tok, kind = _fit_final(config, inside, labels, epoch, progress)
    return _Chosen(
        config,
        fitted,
        encoder,
        tok,
        kind,
        epoch,
        accuracy,
        epoch,
        weight,
        threshold,
        True,
        list(examples),
    )


def _train_split(
    examples: Sequence[Example],
    labels: list[str],
    config: TrainConfig,
    validation: Sequence[Example] | None,
    progress: bool,
    on_epoch: Callable[[int, float], None] | None,
) -> _Chosen:
    """One validation split (given, or a stratified share of the examples): early stopping,
    the ensemble weight and the threshold are chosen on it; with a carved split both models
    are then refitted on all the examples."""
    seed_everything(config.seed)
    inside = in_scope(examples)
    if validation is None:
        train_set, val_set = split(inside, config.val_fraction, config.seed)
        val_set += out_of_scope(examples)
    else:
        train_set, val_set = inside, list(validation)
    val_in = [e for e in in_scope(val_set) if e.intent in set(labels)]
    rng = random.Random(config.seed)
    typos = [
        Example(typo(e.text, rng), e.intent) for _ in range(config.typo_copies) for e in train_set
    ]
    train_set = list(train_set) + typos
    texts = [e.text for e in train_set]
    encoder, tok, kind = build_encoder(config.for_size(len(train_set)), texts, labels)
    # the small encoder's size and thread count are for training from scratch only
    config = config.for_size(len(train_set)) if kind == "scratch" else config
    torch.set_num_threads(config.threads)
    fitted = _Sparse.fit(train_set, labels, config) if config.ngrams else None
    val_sparse = fitted.probs([e.text for e in val_set]) if fitted else None
    in_rows = [i for i, e in enumerate(val_set) if e.intent in set(labels)]
    gold = torch.tensor([labels.index(e.intent) for e in val_in], dtype=torch.long)

    n = len(labels)
    sparse_in = val_sparse[in_rows] if val_sparse is not None else None
    plan = config.schedule(kind, len(train_set))

    def score(enc: PreTrainedModel) -> tuple[float, float, float]:
        dense_val = _encoder_probs(enc, tok, [e.text for e in val_in], config.max_len, n)
        return best_mix(dense_val, sparse_in, gold, config.mix_grid)

    track = _Best(score, plan.patience, on_epoch, plan.min_epochs)
    epoch = _fit_encoder(encoder, tok, train_set, labels, config, kind, track, None, progress)
    best, best_epoch, best_w, best_state = track.acc, track.epoch, track.weight, track.state
    if best_state is not None:
        encoder.load_state_dict(best_state)
    nn.Module.eval(encoder)
    dense_all = _encoder_probs(encoder, tok, [e.text for e in val_set], config.max_len, len(labels))
    mixed = dense_all if val_sparse is None else best_w * dense_all + (1 - best_w) * val_sparse
    temperature = fit_temperature(mixed[in_rows], gold) if in_rows else 1.0
    mixed = calibrate(mixed, temperature)
    threshold = choose_threshold(
        Scores.of(val_set, mixed, labels),
        len(labels),
        config.clarify_cost,
        config.out_of_scope_share,
    )
    threshold["chosen_on"] = f"{len(val_set)} validation examples"
    threshold["temperature"] = temperature
    refit = bool(validation is None and plan.refit and val_in)
    if refit:  # the threshold above came from models that had not seen the validation split
        everything = train_set + val_in
        fitted = _Sparse.fit(everything, labels, config) if fitted else None
        encoder, tok, kind = _fit_final(config, everything, labels, best_epoch, progress)
    return _Chosen(
        config,
        fitted,
        encoder,
        tok,
        kind,
        epoch,
        best,
        best_epoch,
        best_w,
        threshold,
        refit,
        list(val_set),
    )


def folds(examples: Sequence[Example], k: int, seed: int) -> list[int]:
    """Stratified fold numbers: each intent's examples, shuffled, dealt out in turn."""
    rng = random.Random(seed)
    by: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by.setdefault(e.intent, []).append(i)
    out = [0] * len(examples)
    for name in sorted(by):
        idx = by[name][:]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            out[i] = j % k
    return out


def _cross_validate(
    examples: Sequence[Example],
    labels: list[str],
    config: TrainConfig,
    on_epoch: Callable[[int, float], None] | None,
    progress: bool = False,
) -> tuple[float, int, float, dict[str, Any]]:
    """Out-of-fold predictions of both models at every epoch of the planned schedule, each fold
    trained on the others; out-of-scope examples are scored by every fold's models (never
    trained on) and averaged. Chooses the epoch and encoder weight with the best out-of-fold
    accuracy (ties: log-loss) and the threshold on those predictions. Returns (accuracy,
    epoch, encoder weight, threshold)."""
    inside = in_scope(examples)
    outside = out_of_scope(examples)
    k = min(config.cv_folds, min(Counter(e.intent for e in inside).values()))
    if k < 2:
        raise NluDataError("cross-validation needs at least two examples of every intent")
    fold = folds(inside, k, config.seed)
    n = len(labels)
    gold = torch.tensor([labels.index(e.intent) for e in inside], dtype=torch.long)
    sizes = [sum(1 for g in fold if g != f) for f in range(k)]
    epochs = max(config.schedule("scratch", m).epochs for m in sizes)
    dense = torch.zeros((epochs, len(inside), n))
    dense_out = torch.zeros((epochs, len(outside), n))
    sparse_p = torch.zeros((len(inside), n))
    sparse_out = torch.zeros((len(outside), n))
    # One bar over every fold's steps: the folds are most of a first training's time.
    fold_steps = [
        _steps(config.schedule("scratch", m), m) * config.schedule("scratch", m).epochs
        for m in sizes
    ]
    bar = tqdm(total=sum(fold_steps), unit="step", disable=not progress)
    for f in range(k):
        bar.set_description(f"cross-validating, fold {f + 1} of {k}")
        part = [e for e, g in zip(inside, fold, strict=True) if g != f]
        rows = [i for i, g in enumerate(fold) if g == f]
        held = [inside[i].text for i in rows] + [e.text for e in outside]
        if config.ngrams:
            p = _Sparse.fit(part, labels, config).probs(held)
            sparse_p[rows], sparse_out = p[: len(rows)], sparse_out + p[len(rows) :] / k
        seed_everything(config.seed)
        encoder, tok, kind = build_encoder(config, [e.text for e in part], labels, quiet=True)

        def record(
            epoch: int, enc: PreTrainedModel, tok: Any = tok, rows: Any = rows, held: Any = held
        ) -> bool:
            p = _encoder_probs(enc, tok, held, config.max_len, n)
            dense[epoch - 1, rows] = p[: len(rows)]
            dense_out[epoch - 1] += p[len(rows) :] / k
            return False

        _fit_encoder(encoder, tok, part, labels, config, kind, record, None, bar)
    bar.close()
    sp = sparse_p if config.ngrams else None
    scored: list[tuple[float, float, tuple[int, float]]] = []
    for e in range(min(config.schedule("scratch", m).epochs for m in sizes)):
        w, acc, nll = best_mix(dense[e], sp, gold, config.mix_grid)
        if on_epoch:
            on_epoch(e + 1, acc)
        scored.append((acc, nll, (e + 1, w)))
    acc, _, (epoch, w) = pick(scored, len(gold))
    mixed = dense[epoch - 1] if sp is None else w * dense[epoch - 1] + (1 - w) * sp
    if outside:
        out_mixed = dense_out[epoch - 1]
        if config.ngrams:
            out_mixed = w * out_mixed + (1 - w) * sparse_out
        mixed = torch.cat([mixed, out_mixed])
    temperature = fit_temperature(mixed[: len(inside)], gold)
    mixed = calibrate(mixed, temperature)
    scores = Scores.of(inside + outside, mixed, labels)
    threshold = choose_threshold(scores, n, config.clarify_cost, config.out_of_scope_share)
    threshold["chosen_on"] = f"{k}-fold out-of-fold predictions of {len(inside) + len(outside)}"
    threshold["temperature"] = temperature
    return acc, epoch, w, threshold


class _Best:
    """Early stopping: keeps the encoder state with the best validation (accuracy, then
    log-loss) of the ensemble; says stop after `patience` epochs without one, once
    `min_epochs` have run."""

    def __init__(
        self,
        score: Callable[[PreTrainedModel], tuple[float, float, float]],
        patience: int,
        on_epoch: Callable[[int, float], None] | None,
        min_epochs: int = 0,
    ):
        self.score, self.patience, self.on_epoch = score, patience, on_epoch
        self.min_epochs = min_epochs
        self.acc, self.nll, self.epoch, self.weight, self.stale = -1.0, 0.0, 0, 1.0, 0
        self.state: dict[str, Any] | None = None

    def __call__(self, epoch: int, encoder: PreTrainedModel) -> bool:
        w, acc, nll = self.score(encoder)
        if self.on_epoch:
            self.on_epoch(epoch, acc)
        if (acc, -nll) > (self.acc, -self.nll):
            self.acc, self.nll, self.epoch, self.weight, self.stale = acc, nll, epoch, w, 0
            self.state = copy.deepcopy(encoder.state_dict())
            return False
        self.stale += 1
        return self.stale >= self.patience and epoch >= self.min_epochs


def _steps(plan: Schedule, n_train: int) -> int:
    """Optimiser steps per epoch."""
    return (n_train + plan.batch_size - 1) // plan.batch_size


def _fit_final(
    config: TrainConfig,
    examples: Sequence[Example],
    labels: list[str],
    epochs: int,
    progress: bool | tqdm[Any],
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """A fresh encoder fitted on `examples` for `epochs` (chosen on held-out data before), from
    the same seed as every other fit, ready to predict: the model that ships."""
    seed_everything(config.seed)
    encoder, tok, kind = build_encoder(config, [e.text for e in examples], labels, quiet=True)
    _fit_encoder(encoder, tok, examples, labels, config, kind, None, epochs, progress)
    nn.Module.eval(encoder)
    return encoder, tok, kind


def _fit_encoder(
    encoder: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    train_set: Sequence[Example],
    labels: list[str],
    config: TrainConfig,
    kind: str,
    evaluate: Callable[[int, PreTrainedModel], bool] | None,
    stop_after: int | None,
    progress: bool | tqdm[Any],
) -> int:
    """The fine-tuning loop (AdamW, warm-up then linear decay over the planned epochs, label
    smoothing), on the schedule of the encoder's kind; each batch is padded to its own longest
    text. `evaluate` after each epoch says when to stop; `stop_after` stops a refit at the
    epoch validation chose. Returns the number of epochs run."""
    data = _Encoded(tok, [e.text for e in train_set], config.max_len)
    y = torch.tensor([labels.index(e.intent) for e in train_set])
    plan = config.schedule(kind, len(train_set))
    steps_per_epoch = _steps(plan, len(train_set))
    epochs = plan.epochs
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(encoder.parameters(), lr=plan.lr)
    warm = max(1, int(total * config.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    desc = "training intent model" if stop_after is None else "refitting on all examples"
    steps = total if stop_after is None else steps_per_epoch * stop_after
    if isinstance(progress, tqdm):  # a bar of the caller's, over several fits
        bar, own_bar = progress, False
    else:
        bar, own_bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress), True
    gen = torch.Generator().manual_seed(config.seed)
    half = bf16.wanted(config.bf16, kind)
    lengths = data.lengths()
    epoch = 0
    for epoch in range(1, (stop_after or epochs) + 1):
        encoder.train()
        for idx in batches(lengths, plan.batch_size, gen, grouped=plan.grouped):
            ids, mask = data.batch(idx)
            with bf16.autocast(half):
                logits = encoder(input_ids=ids, attention_mask=mask).logits
            loss = loss_fn(logits.float(), y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
            opt.step()
            sched.step()
            bar.update(1)
        if evaluate is not None and evaluate(epoch, encoder):
            break
    if own_bar:
        bar.close()
    return epoch


def _encoder_probs(
    encoder: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_len: int,
    n_labels: int,
) -> torch.Tensor:
    """Probabilities in the order of `texts`, computed in batches of texts of similar length
    (each padded to its own longest), so little of the work is padding."""
    nn.Module.eval(encoder)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.zeros((len(texts), n_labels))
    with torch.inference_mode():
        for i in range(0, len(order), 64):
            rows = order[i : i + 64]
            enc = tok(
                [texts[r] for r in rows],
                padding=True,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            )
            logits = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            out[rows] = torch.softmax(logits.logits.float(), dim=-1)
    return out


def _net_probs(
    tok: PreTrainedTokenizerBase, vocab: NgramVocab, max_len: int
) -> Callable[[IntentNet, Sequence[str]], torch.Tensor]:
    """A whole network's probabilities (encoder and n-gram regression), encoded as served."""
    fast = FastEncoder(tok, max_len)

    def probs(net: IntentNet, texts: Sequence[str]) -> torch.Tensor:
        parts = [torch.zeros((0, int(net.ngram_bias.shape[0])))]
        for i in range(0, len(texts), 64):
            part = list(texts[i : i + 64])
            ids, mask = fast(part)
            parts.append(forward(net, Batch(ids, mask, vocab.bag(part))))
        return torch.cat(parts)

    return probs
