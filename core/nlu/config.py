"""Training settings of the intent model; the defaults are the measured production ones."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

FORMAT = 4
"""Bumped when the model directory's layout, or the meaning of what training writes into it
(the threshold's rule), changes, so old directories are retrained."""
CLARIFY_COST = 0.3
"""What asking "is it one of these?" costs against a wrong answer (1): one more tap, where a
wrong answer takes the customer down a path they must notice and leave."""
OUT_OF_SCOPE_SHARE = 0.1
"""The share of messages the threshold expects to be out of scope, whatever the share of
out-of-scope examples in the data (a handful of them would otherwise weigh like half)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """How an encoder is optimised, by the kind of base it starts from. A pretrained base is
    fine-tuned for a few epochs and kept as validation chose it (a refit on all the data would
    double the cost of the part that costs). An encoder from scratch on small data needs many
    more steps (`min_steps`), a patience of half its epochs, and is refitted on every example
    once validation has chosen the epoch."""

    epochs: int
    patience: int
    lr: float
    batch_size: int
    refit: bool
    min_epochs: int = 0
    """Epochs run before early stopping may stop (a small bot's step floor: a validation split
    of a hundred examples is too noisy to cut it short)."""
    grouped: bool = False
    """Batches of texts of similar length (shuffled in chunks, then sorted within each): half
    the tokens of random batches on short messages, each batch padded to its own longest."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How the intent model is trained; the defaults are the production settings, `TINY` the
    tests' small model."""

    base_model: str = "distilbert-base-uncased"
    hub: str | None = None
    """The model hub's endpoint to fetch a `base_model` name from; None: offline, the hub's
    cache only (the gateway passes HF_ENDPOINT unless HF_HUB_OFFLINE is set)."""
    # the from-scratch encoder (used when the base model cannot be loaded)
    layers: int = 2
    dim: int = 256
    heads: int = 4
    hidden: int = 1024
    vocab_size: int = 8000
    dropout: float = 0.1
    small_below: int = 3000
    """Fewer training examples than this get the small encoder below: on the default bot's
    validation split a smaller encoder trained from scratch did better the smaller it was."""
    small_dim: int = 64
    small_heads: int = 2
    small_hidden: int = 256
    small_lr: float = 2e-3
    """The small encoder's learning rate, chosen by 5-fold cross-validation on the default bot's
    training examples."""
    small_threads: int = 1
    """Torch threads while training the small encoder: its matrices are too small to share out,
    and on busy cores more threads than one make an epoch much slower."""
    cv_folds: int = 5
    """Small data and a from-scratch encoder (cheap to fit): the epoch, the ensemble weight and
    the threshold are chosen on out-of-fold predictions of this many folds of the training
    examples instead of one validation split (0 or 1: one split)."""
    # optimisation
    max_len: int = 40
    epochs: int = 8
    min_steps: int = 600
    """Small bots get more epochs: at least this many optimiser steps (at most 60 epochs)."""
    patience: int = 2
    """Epochs without a better validation accuracy before stopping (from scratch: at least
    half the planned epochs)."""
    batch_size: int = 64
    lr: float = 5e-4
    # fine-tuning a pretrained base: a few epochs suffice (the encoder already knows the
    # language), early stopping on validation, all `threads`
    pretrained_epochs: int = 6
    """CLINC150 with a MiniLM-L6: 96.37% in scope on `val` after 6 epochs, 95.30% after 4."""
    pretrained_min_steps: int = 300
    """Small bots get more epochs, up to 20, all of which run: at least this many optimiser
    steps (the default bot's 100 steps in 4 epochs left a MiniLM still improving at its last
    epoch, 93.95% held out)."""
    pretrained_patience: int = 2
    pretrained_batch_size: int = 32
    pretrained_lr: float = 1e-4
    """Peak learning rate (after 6% warm-up, then linear decay): CLINC150 `val` 95.30% against
    94.17% at 5e-5 in the same 4 epochs."""
    bf16: bool | None = None
    """Fine-tuning's matrix products in bfloat16 (True), float32 (False), or bfloat16 for a
    pretrained base where the CPU has it natively (None: `NLU_TRAIN_BF16=auto`)."""
    group_by_length: bool = True
    """Fine-tuning a pretrained base: batches of similar length (see `Schedule.grouped`); the
    from-scratch fallback keeps random batches, its measured schedule."""
    warmup: float = 0.06
    label_smoothing: float = 0.1
    typo_copies: int = 0
    val_fraction: float = 0.1
    seed: int = 13
    threads: int = 2
    # the sparse n-gram logistic regression ensembled with the encoder (ngrams=False: off)
    ngram_min_count: int = 1
    ngram_max: int = 200_000
    ngrams: bool = True
    sparse_c: float = 20.0
    """Inverse L2 strength of the n-gram logistic regression (as the TF-IDF baseline's)."""
    sparse_iter: int = 2000
    mix_grid: tuple[float, ...] = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))
    """Encoder weights tried on validation for the average of probabilities (0.1 to 0.9: the
    encoder always counts)."""
    clarify_cost: float = CLARIFY_COST
    out_of_scope_share: float = OUT_OF_SCOPE_SHARE
    refit: bool = True
    """With a validation split carved from the training data and an encoder from scratch: once
    the epochs, the ensemble weight and the threshold are chosen, both models are refitted on
    all the training data (the encoder for the chosen number of epochs)."""

    def for_size(self, n_examples: int) -> TrainConfig:
        """The encoder size that suits this much data (never larger than configured)."""
        if n_examples >= self.small_below or self.dim <= self.small_dim:
            return self
        return replace(
            self,
            dim=self.small_dim,
            heads=self.small_heads,
            hidden=self.small_hidden,
            lr=self.small_lr,
            threads=self.small_threads,
        )

    def schedule(self, kind: str, n_train: int) -> Schedule:
        """The optimisation plan for an encoder of this kind ("pretrained" or "scratch")
        trained on `n_train` examples."""
        if kind == "pretrained":
            steps = -(-n_train // self.pretrained_batch_size)
            floor = min(-(-self.pretrained_min_steps // max(steps, 1)), 20)
            return Schedule(
                max(self.pretrained_epochs, floor),
                self.pretrained_patience,
                self.pretrained_lr,
                self.pretrained_batch_size,
                refit=False,
                min_epochs=floor,
                grouped=self.group_by_length,
            )
        steps = -(-n_train // self.batch_size)
        epochs = min(max(self.epochs, -(-self.min_steps // max(steps, 1))), 60)
        # the from-scratch encoder improves the ensemble late, after a plateau
        patience = max(self.patience, epochs // 2)
        return Schedule(epochs, patience, self.lr, self.batch_size, refit=self.refit)

    def with_(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


TINY = TrainConfig(
    layers=1,
    dim=64,
    heads=2,
    hidden=128,
    vocab_size=2000,
    epochs=8,
    min_steps=0,
    patience=2,
    batch_size=32,
)
"""For tests: trains on a small bot in seconds."""
