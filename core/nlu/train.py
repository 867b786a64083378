"""Training: a pretrained DistilBERT (or any local checkpoint) fine-tuned for sequence
classification, or, when that cannot be loaded, a DistilBERT initialised from scratch with a
WordPiece vocabulary trained on the examples; both beside the sparse n-gram branch."""

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

from core.nlu import artifacts
from core.nlu.config import FORMAT, TrainConfig
from core.nlu.data import Example, NluDataError, data_hash, in_scope, out_of_scope
from core.nlu.metrics import Scores, choose_threshold
from core.nlu.network import IntentNet
from core.nlu.ngrams import Bag, NgramVocab
from core.nlu.predictor import Predictor
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
    config: TrainConfig, texts: Sequence[str], labels: list[str]
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
        log.warning(
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

    def __init__(
        self, tok: PreTrainedTokenizerBase, vocab: NgramVocab, texts: Sequence[str], n: int
    ):
        self.ids: list[list[int]] = tok(list(texts), truncation=True, max_length=n)["input_ids"]
        self.grams = [vocab.encode(t) for t in texts]
        self.pad = int(tok.pad_token_id or 0)

    def batch(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, Bag]:
        width = max(len(self.ids[i]) for i in idx)
        ids = torch.full((len(idx), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        flat: list[int] = []
        offsets: list[int] = []
        weights: list[float] = []
        for row, i in enumerate(idx):
            seq = self.ids[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
            offsets.append(len(flat))
            flat.extend(self.grams[i])
            weights.extend([len(self.grams[i]) ** -0.5] * len(self.grams[i]))
        bag = Bag(torch.tensor(flat), torch.tensor(offsets), torch.tensor(weights))
        return ids, mask, bag


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
    the model directory. Without `validation`, a stratified share of the data is held out."""
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
    train_set = list(train_set) + [
        Example(typo(e.text, rng), e.intent) for _ in range(config.typo_copies) for e in train_set
    ]
    config = config.for_size(len(train_set))
    texts = [e.text for e in train_set]
    encoder, tok, kind = build_encoder(config, texts, labels)
    vocab = (
        NgramVocab.fit(texts, config.ngram_min_count, config.ngram_max)
        if config.ngrams
        else NgramVocab({})
    )
    net = IntentNet(encoder, len(vocab), len(labels))
    data = _Encoded(tok, vocab, texts, config.max_len)
    y = torch.tensor([labels.index(e.intent) for e in train_set])
    steps_per_epoch = (len(train_set) + config.batch_size - 1) // config.batch_size
    epochs = min(max(config.epochs, -(-config.min_steps // steps_per_epoch)), 60)
    patience = max(config.patience, epochs // 4)
    total = steps_per_epoch * epochs
    lr = config.lr if kind == "scratch" else config.pretrained_lr
    dense = torch.optim.AdamW(
        [p for n, p in net.named_parameters() if not n.startswith("ngram.")], lr=lr
    )
    sparse = torch.optim.SparseAdam([net.ngram.weight], lr=config.ngram_lr)
    sparse_step = cast(Callable[[], object], sparse.step)
    warm = max(1, int(total * config.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        dense, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    best, best_state, best_epoch, stale, epoch = -1.0, None, 0, 0, 0
    bar = tqdm(total=total, desc="training intent model", unit="step", disable=not progress)
    gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(len(train_set), generator=gen).tolist()
        for s in range(steps_per_epoch):
            idx = order[s * config.batch_size : (s + 1) * config.batch_size]
            ids, mask, bag = data.batch(idx)
            d, sp = net.branches(ids, mask, bag)
            target = y[idx]
            loss = loss_fn(d + sp, target) + 0.5 * loss_fn(d, target)
            if net.use_ngrams:
                loss = loss + 0.5 * loss_fn(sp, target)
            dense.zero_grad()
            sparse.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(dense.param_groups[0]["params"], 1.0)
            dense.step()
            if net.use_ngrams:
                sparse_step()
            sched.step()
            bar.update(1)
        acc = _accuracy(net, tok, vocab, val_in, labels, config.max_len) if val_in else 0.0
        bar.set_postfix(epoch=epoch, val_acc=f"{acc:.4f}")
        if on_epoch:
            on_epoch(epoch, acc)
        if acc > best:
            best, best_epoch, stale = acc, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
            if stale >= patience:
                break
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    loaded = artifacts.Loaded(net, tok, labels, vocab, {}, 0.5, config.max_len)
    probs = Predictor(loaded).predict([e.text for e in val_set])
    threshold = choose_threshold(Scores.of(val_set, probs, labels), len(labels))
    fp = {
        **fingerprint(examples, config),
        "encoder": kind,
        "train": config.as_dict(),
        "epochs_run": epoch,
        "best_epoch": best_epoch,
        "val_accuracy": best,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    threshold["chosen_on"] = f"{len(val_set)} validation examples"
    artifacts.save(out, net, tok, labels, vocab, fp, threshold)
    seconds = time.perf_counter() - started
    log.info(
        "nlu.trained",
        model_dir=str(out),
        encoder=kind,
        epochs=epoch,
        val_accuracy=best,
        threshold=threshold["threshold"],
        seconds=round(seconds, 1),
    )
    return TrainResult(out, labels, kind, epoch, best, threshold, seconds)


def _accuracy(
    net: IntentNet,
    tok: PreTrainedTokenizerBase,
    vocab: NgramVocab,
    val: Sequence[Example],
    labels: list[str],
    max_len: int,
) -> float:
    net.eval()
    loaded = artifacts.Loaded(net, tok, labels, vocab, {}, 0.5, max_len)
    probs = Predictor(loaded).predict([e.text for e in val])
    pred = probs.argmax(dim=-1).tolist()
    hits = sum(labels[int(p)] == e.intent for p, e in zip(pred, val, strict=True))
    return hits / len(val)
