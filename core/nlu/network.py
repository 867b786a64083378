"""The classifier: a transformer sequence classifier (DistilBERT) whose logits are summed with
those of a sparse n-gram branch; each branch also has its own loss, so each learns on its own
and the sum acts as an ensemble."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from transformers import PreTrainedModel

from core.nlu.ngrams import Bag


class IntentNet(nn.Module):
    def __init__(self, encoder: PreTrainedModel, n_ngrams: int, n_labels: int):
        super().__init__()
        self.encoder = encoder
        self.ngram = nn.EmbeddingBag(n_ngrams, n_labels, mode="sum", sparse=True)
        nn.init.zeros_(self.ngram.weight)
        self.use_ngrams = n_ngrams > 1

    def branches(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, bag: Bag
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        dense = cast(torch.Tensor, out.logits)
        if not self.use_ngrams:
            return dense, torch.zeros_like(dense)
        sparse = self.ngram(bag.ids, bag.offsets, per_sample_weights=bag.weights)
        return dense, cast(torch.Tensor, sparse)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, bag: Bag
    ) -> torch.Tensor:
        dense, sparse = self.branches(input_ids, attention_mask, bag)
        return dense + sparse
