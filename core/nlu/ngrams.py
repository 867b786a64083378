"""Sparse n-gram features (word 1-2 grams, character 3-5 grams inside word boundaries) fed to
the classifier beside the transformer, the idea behind Rasa's DIET: the lexical signal a small
encoder trained from scratch misses."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_grams(w: str) -> list[str]:
    """The word itself and its character 3-5 grams, with `<` `>` marking its edges."""
    padded = f"<{w}>"
    out = [f"w:{w}"]
    for n in (3, 4, 5):
        out.extend(f"c:{padded[i : i + n]}" for i in range(max(len(padded) - n + 1, 0)))
    return out


def grams(text: str) -> list[str]:
    ws = words(text)
    out = [f"b:{a} {b}" for a, b in itertools.pairwise(ws)]
    for w in ws:
        out.extend(word_grams(w))
    return out


@dataclass(frozen=True, slots=True)
class Bag:
    """An `nn.EmbeddingBag` input: flat ids, per-text offsets, per-id weights."""

    ids: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor


class NgramVocab:
    """Index 0 is reserved (no known n-gram), so every text has at least one entry."""

    CACHE = 100_000

    def __init__(self, index: dict[str, int]):
        self.index = index
        self._words: dict[str, tuple[int, ...]] = {}

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 200_000) -> NgramVocab:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(set(grams(t)))
        kept = [g for g, c in counts.most_common(max_size) if c >= min_count]
        return cls({g: i + 1 for i, g in enumerate(sorted(kept))})

    def __len__(self) -> int:
        return len(self.index) + 1

    def encode(self, text: str) -> list[int]:
        ws = words(text)
        ids: set[int] = set()
        for w in ws:
            ids.update(self._word(w))
        for a, b in itertools.pairwise(ws):
            if i := self.index.get(f"b:{a} {b}"):
                ids.add(i)
        return sorted(ids) or [0]

    def _word(self, w: str) -> tuple[int, ...]:
        """A word's n-gram ids, cached: words repeat, so serving spends little time here."""
        hit = self._words.get(w)
        if hit is None:
            hit = tuple(i for g in word_grams(w) if (i := self.index.get(g)))
            if len(self._words) < self.CACHE:
                self._words[w] = hit
        return hit

    def bag(self, texts: Sequence[str]) -> Bag:
        """Each text's weights sum to sqrt(n): the L2 normalisation of a binary TF vector."""
        ids: list[int] = []
        offsets: list[int] = []
        weights: list[float] = []
        for t in texts:
            enc = self.encode(t)
            offsets.append(len(ids))
            ids.extend(enc)
            weights.extend([1.0 / math.sqrt(len(enc))] * len(enc))
        return Bag(
            torch.tensor(ids, dtype=torch.long),
            torch.tensor(offsets, dtype=torch.long),
            torch.tensor(weights, dtype=torch.float32),
        )
