"""Batch inference on a loaded model: text → encoded batch → probabilities. Encoding and the
forward pass (encoder + sparse n-gram model) are separate so the benchmark can time the bare
forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from core.nlu.artifacts import Loaded
from core.nlu.network import IntentNet
from core.nlu.ngrams import Bag, NgramVocab


@dataclass(frozen=True, slots=True)
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    bag: Bag


def encode(tokenizer: object, vocab: NgramVocab, texts: Sequence[str], max_len: int) -> Batch:
    enc = tokenizer(  # type: ignore[operator]  # a transformers tokenizer: untyped __call__
        list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt"
    )
    return Batch(enc["input_ids"], enc["attention_mask"], vocab.bag(texts))


def forward(net: IntentNet, batch: Batch) -> torch.Tensor:
    """Probabilities, one row per text."""
    with torch.inference_mode():
        probs: torch.Tensor = net(batch.input_ids, batch.attention_mask, batch.bag)
        return probs


class Predictor:
    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.labels = loaded.labels

    def encode(self, texts: Sequence[str]) -> Batch:
        m = self.loaded
        return encode(m.tokenizer, m.vocab, texts, m.max_len)

    def forward(self, batch: Batch) -> torch.Tensor:
        return forward(self.loaded.net, batch)

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        if not texts:
            return torch.zeros((0, len(self.labels)))
        parts = [
            self.forward(self.encode(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(parts)
