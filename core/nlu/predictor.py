"""Batch inference on a loaded model: text → encoded batch → probabilities. Encoding and the
forward pass (encoder + sparse n-gram model) are separate so the benchmark can time the bare
forward pass."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

from core.nlu.artifacts import Loaded
from core.nlu.calibration import calibrate
from core.nlu.network import IntentNet
from core.nlu.ngrams import Bag, NgramVocab


@dataclass(frozen=True, slots=True)
class Batch:
    """Texts encoded for one forward pass: token ids, attention mask and n-gram bag."""

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


class FastEncoder:
    """The same ids and mask as `encode`, straight from the Rust tokenizer behind the
    transformers one: truncation and padding to the batch's longest text are set once, and the
    padded ids go to torch through one numpy array (the transformers call re-applies its
    settings and converts on every call, a good part of the serving path's time)."""

    def __init__(self, tokenizer: object, max_len: int):
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not isinstance(backend, Tokenizer):
            raise TypeError("a fast (Rust-backed) tokenizer is needed")
        self.rust = copy.deepcopy(backend)
        self.rust.enable_truncation(max_len)
        pad_id = int(getattr(tokenizer, "pad_token_id", 0) or 0)
        pad = str(getattr(tokenizer, "pad_token", "[PAD]"))
        self.rust.enable_padding(pad_id=pad_id, pad_token=pad)

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encs = self.rust.encode_batch(list(texts))
        ids = torch.from_numpy(np.array([e.ids for e in encs], dtype=np.int64))
        mask = torch.from_numpy(np.array([e.attention_mask for e in encs], dtype=np.int64))
        return ids, mask


class Predictor:
    """Runs a loaded model on a batch of texts: encoding and the forward pass apart, so the
    parser batches and the benchmark can time each."""

    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.labels = loaded.labels
        self._fast = FastEncoder(loaded.tokenizer, loaded.max_len)

    def encode(self, texts: Sequence[str]) -> Batch:
        ids, mask = self._fast(texts)
        return Batch(ids, mask, self.loaded.vocab.bag(texts))

    def forward(self, batch: Batch) -> torch.Tensor:
        """Calibrated probabilities (the model's temperature applied)."""
        return calibrate(forward(self.loaded.net, batch), self.loaded.temperature)

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        if not texts:
            return torch.zeros((0, len(self.labels)))
        parts = [
            self.forward(self.encode(texts[i : i + batch_size]))
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(parts)
