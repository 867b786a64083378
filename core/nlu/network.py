"""The classifier: a transformer sequence classifier (DistilBERT) ensembled with a sparse
TF-IDF n-gram logistic regression by averaging their probabilities. The two are fitted
separately (the regression to convergence with L2, so it cannot memorise the training set
through the encoder's loss); the encoder's weight in the average is chosen on validation data."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from transformers import PreTrainedModel

from core.nlu.ngrams import Bag


class IntentNet(nn.Module):
    """The intent classifier: a transformer encoder's pooled output and a sparse n-gram model,
    mixed into one score per intent."""

    mix: torch.Tensor

    def __init__(self, encoder: PreTrainedModel, n_ngrams: int, n_labels: int):
        super().__init__()
        self.encoder = encoder
        self.ngram = nn.EmbeddingBag(n_ngrams, n_labels, mode="sum")
        nn.init.zeros_(self.ngram.weight)
        self.ngram_bias = nn.Parameter(torch.zeros(n_labels))
        self.use_ngrams = n_ngrams > 1
        self.register_buffer("mix", torch.tensor([1.0]))
        """The encoder's weight in the average of probabilities (1.0: the encoder alone)."""

    def encoder_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return cast(torch.Tensor, out.logits)

    def sparse_logits(self, bag: Bag) -> torch.Tensor:
        out = self.ngram(bag.ids, bag.offsets, per_sample_weights=bag.weights)
        return cast(torch.Tensor, out) + self.ngram_bias

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, bag: Bag
    ) -> torch.Tensor:
        """Probabilities, one row per text."""
        dense = torch.softmax(self.encoder_logits(input_ids, attention_mask).float(), dim=-1)
        w = float(self.mix)
        if not self.use_ngrams or w >= 1.0:
            return dense
        sparse = torch.softmax(self.sparse_logits(bag).float(), dim=-1)
        return w * dense + (1.0 - w) * sparse
