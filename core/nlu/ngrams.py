"""Sparse n-gram features (word 1-2 grams, character 3-5 grams inside word boundaries) with
TF-IDF weights: the input of the regularised logistic regression that is ensembled with the
transformer, the lexical signal a small encoder trained from scratch misses."""

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
    """Index 0 is reserved (no known n-gram), so every text has at least one entry. `idf[i]` is
    the smoothed inverse document frequency of gram i (as sklearn's TfidfVectorizer computes
    it); word grams (words, bigrams) and character grams are L2-normalised separately, each
    group to 1/sqrt(2) when both are present, so a text's vector has unit length."""

    CACHE = 100_000

    def __init__(self, index: dict[str, int], idf: Sequence[float] | None = None):
        self.index = index
        self.idf = list(idf) if idf is not None else [1.0] * (len(index) + 1)
        if len(self.idf) != len(index) + 1:
            raise ValueError(f"{len(self.idf)} idf weights for {len(index) + 1} n-grams")
        self.is_char = [False] * (len(index) + 1)
        for g, i in index.items():
            self.is_char[i] = g.startswith("c:")
        self._words: dict[str, tuple[int, ...]] = {}

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 200_000) -> NgramVocab:
        counts: Counter[str] = Counter()
        n = 0
        for t in texts:
            counts.update(set(grams(t)))
            n += 1
        kept = sorted(g for g, c in counts.most_common(max_size) if c >= min_count)
        idf = [0.0] + [math.log((1 + n) / (1 + counts[g])) + 1 for g in kept]
        return cls({g: i + 1 for i, g in enumerate(kept)}, idf)

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

    def weights(self, ids: Sequence[int]) -> list[float]:
        """Binary TF times IDF, each group (word grams, character grams) L2-normalised."""
        raw = [self.idf[i] for i in ids]
        char = [self.is_char[i] for i in ids]
        norms = [
            math.sqrt(sum(r * r for r, c in zip(raw, char, strict=True) if c == g))
            for g in (False, True)
        ]
        groups = sum(1 for x in norms if x > 0) or 1
        scale = [1.0 / (x * math.sqrt(groups)) if x > 0 else 0.0 for x in norms]
        return [r * scale[c] if r > 0 else 1.0 for r, c in zip(raw, char, strict=True)]

    def _word(self, w: str) -> tuple[int, ...]:
        """A word's n-gram ids, cached: words repeat, so serving spends little time here."""
        hit = self._words.get(w)
        if hit is None:
            hit = tuple(i for g in word_grams(w) if (i := self.index.get(g)))
            if len(self._words) < self.CACHE:
                self._words[w] = hit
        return hit

    def bag(self, texts: Sequence[str]) -> Bag:
        return self.bag_of([self.encode(t) for t in texts])

    def bag_of(self, encoded: Sequence[Sequence[int]]) -> Bag:
        ids: list[int] = []
        offsets: list[int] = []
        weights: list[float] = []
        for enc in encoded:
            offsets.append(len(ids))
            ids.extend(enc)
            weights.extend(self.weights(enc))
        return Bag(
            torch.tensor(ids, dtype=torch.long),
            torch.tensor(offsets, dtype=torch.long),
            torch.tensor(weights, dtype=torch.float32),
        )
