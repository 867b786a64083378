"""Training: a pretrained DistilBERT (or any local checkpoint) fine-tuned for sequence
classification, or, when that cannot be loaded, a DistilBERT initialised from scratch with a
WordPiece vocabulary trained on the examples; either is ensembled with a TF-IDF n-gram logistic
regression fitted on its own."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

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

from core.nlu import artifacts, sparse
from core.nlu.config import FORMAT, TrainConfig
from core.nlu.data import Example, NluDataError, data_hash, in_scope, out_of_scope
from core.nlu.metrics import Scores, choose_threshold
from core.nlu.network import IntentNet
from core.nlu.ngrams import NgramVocab
from core.nlu.tokenizer import train_wordpiece

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TrainResult:
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
    try:
        tok = cast(PreTrainedTokenizerBase, AutoTokenizer.from_pretrained(config.base_model))
        enc = AutoModelForSequenceClassification.from_pretrained(
            config.base_model,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=True,
        )
        return cast(PreTrainedModel, enc), tok, "pretrained"
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        (log.debug if quiet else log.warning)(
            "nlu.base_model_unavailable",
            base_model=config.base_model,
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

    def batch(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(self.ids[i]) for i in idx)
        ids = torch.full((len(idx), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            seq = self.ids[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return ids, mask


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


def best_mix(
    dense: torch.Tensor, sparse_p: torch.Tensor | None, gold: torch.Tensor, grid: Sequence[float]
) -> tuple[float, float, float]:
    """(encoder weight, accuracy, log-loss): the best average on validation by accuracy, ties
    broken by log-loss."""
    if not len(gold):
        return 1.0, 0.0, 0.0
    scored = []
    for w in grid if sparse_p is not None else (1.0,):
        p = dense if sparse_p is None else w * dense + (1 - w) * sparse_p
        acc = float((p.argmax(-1) == gold).float().mean())
        nll = float(-torch.log(p[torch.arange(len(gold)), gold].clamp_min(1e-9)).mean())
        scored.append((acc, -nll, w))
    acc, neg_nll, w = max(scored)
    return w, acc, -neg_nll


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
    torch.set_num_threads(config.threads)
    inside = in_scope(examples)
    labels = sorted({e.intent for e in inside})
    if len(labels) < 2:
        raise NluDataError("training needs at least two intents with examples")
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
    config = config.for_size(len(train_set))
    texts = [e.text for e in train_set]
    fitted = _Sparse.fit(train_set, labels, config) if config.ngrams else None
    val_sparse = fitted.probs([e.text for e in val_set]) if fitted else None
    in_rows = [i for i, e in enumerate(val_set) if e.intent in set(labels)]
    gold = torch.tensor([labels.index(e.intent) for e in val_in], dtype=torch.long)
    encoder, tok, kind = build_encoder(config, texts, labels)

    n = len(labels)
    sparse_in = val_sparse[in_rows] if val_sparse is not None else None
    epochs = _planned_epochs(config, len(train_set))
    patience = max(config.patience, epochs // 2)

    def score(enc: PreTrainedModel) -> tuple[float, float, float]:
        dense_val = _encoder_probs(enc, tok, [e.text for e in val_in], config.max_len, n)
        return best_mix(dense_val, sparse_in, gold, config.mix_grid)

    track = _Best(score, patience, on_epoch)
    epoch = _fit_encoder(encoder, tok, train_set, labels, config, kind, track, None, progress)
    best, best_epoch, best_w, best_state = track.acc, track.epoch, track.weight, track.state
    if best_state is not None:
        encoder.load_state_dict(best_state)
    nn.Module.eval(encoder)
    dense_all = _encoder_probs(encoder, tok, [e.text for e in val_set], config.max_len, len(labels))
    mixed = dense_all if val_sparse is None else best_w * dense_all + (1 - best_w) * val_sparse
    threshold = choose_threshold(Scores.of(val_set, mixed, labels), len(labels))
    threshold["chosen_on"] = f"{len(val_set)} validation examples"
    refit = bool(validation is None and config.refit and val_in)
    if refit:  # the threshold above came from models that had not seen the validation split
        everything = train_set + val_in
        fitted = _Sparse.fit(everything, labels, config) if fitted else None
        seed_everything(config.seed)
        encoder, tok, kind = build_encoder(config, [e.text for e in everything], labels, quiet=True)
        _fit_encoder(encoder, tok, everything, labels, config, kind, None, best_epoch, progress)
        nn.Module.eval(encoder)
    vocab = fitted.vocab if fitted else NgramVocab({})
    net = IntentNet(encoder, len(vocab), len(labels))
    if fitted:
        sparse.install(net, fitted.weight, fitted.bias)
        net.mix.fill_(best_w)
    net.eval()
    fp = {
        **fingerprint(examples, config),
        "encoder": kind,
        "train": config.as_dict(),
        "epochs_run": epoch,
        "best_epoch": best_epoch,
        "val_accuracy": best,
        "ensemble": {
            "encoder_weight": best_w,
            "sparse": f"TF-IDF n-gram logistic regression, C={config.sparse_c}" if fitted else None,
            "refit_with_validation": refit,
        },
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
        seconds=round(seconds, 1),
    )
    return TrainResult(out, labels, kind, epoch, best, threshold, seconds)


class _Best:
    """Early stopping: keeps the encoder state with the best validation (accuracy, then
    log-loss) of the ensemble; says stop after `patience` epochs without one."""

    def __init__(
        self,
        score: Callable[[PreTrainedModel], tuple[float, float, float]],
        patience: int,
        on_epoch: Callable[[int, float], None] | None,
    ):
        self.score, self.patience, self.on_epoch = score, patience, on_epoch
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
        return self.stale >= self.patience


def _planned_epochs(config: TrainConfig, n_train: int) -> int:
    steps_per_epoch = (n_train + config.batch_size - 1) // config.batch_size
    return min(max(config.epochs, -(-config.min_steps // steps_per_epoch)), 60)


def _fit_encoder(
    encoder: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    train_set: Sequence[Example],
    labels: list[str],
    config: TrainConfig,
    kind: str,
    evaluate: Callable[[int, PreTrainedModel], bool] | None,
    stop_after: int | None,
    progress: bool,
) -> int:
    """The fine-tuning loop (AdamW, warm-up then linear decay over the planned epochs, label
    smoothing): `evaluate` after each epoch says when to stop; `stop_after` stops a refit at
    the epoch validation chose. Returns the number of epochs run."""
    data = _Encoded(tok, [e.text for e in train_set], config.max_len)
    y = torch.tensor([labels.index(e.intent) for e in train_set])
    steps_per_epoch = (len(train_set) + config.batch_size - 1) // config.batch_size
    epochs = _planned_epochs(config, len(train_set))
    total = steps_per_epoch * epochs
    lr = config.lr if kind == "scratch" else config.pretrained_lr
    opt = torch.optim.AdamW(encoder.parameters(), lr=lr)
    warm = max(1, int(total * config.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    desc = "training intent model" if stop_after is None else "refitting on all examples"
    steps = total if stop_after is None else steps_per_epoch * stop_after
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
    gen = torch.Generator().manual_seed(config.seed)
    epoch = 0
    for epoch in range(1, (stop_after or epochs) + 1):
        encoder.train()
        order = torch.randperm(len(train_set), generator=gen).tolist()
        for s in range(steps_per_epoch):
            idx = order[s * config.batch_size : (s + 1) * config.batch_size]
            ids, mask = data.batch(idx)
            loss = loss_fn(encoder(input_ids=ids, attention_mask=mask).logits, y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
            opt.step()
            sched.step()
            bar.update(1)
        if evaluate is not None and evaluate(epoch, encoder):
            break
    bar.close()
    return epoch


def _encoder_probs(
    encoder: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_len: int,
    n_labels: int,
) -> torch.Tensor:
    nn.Module.eval(encoder)
    parts = [torch.zeros((0, n_labels))]
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            enc = tok(
                list(texts[i : i + 64]),
                padding=True,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            )
            logits = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            parts.append(torch.softmax(logits.logits.float(), dim=-1))
    return torch.cat(parts)
