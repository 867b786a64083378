"""Sparse n-gram features with TF-IDF weights: the input of the regularised logistic regression
that is ensembled with the transformer, the lexical signal a small encoder trained from scratch
misses. The features are those of scikit-learn's `TfidfVectorizer` pair the baseline uses (word
1-2 grams of 2+ character tokens, and character 2-5 grams inside word boundaries, `char_wb`;
sublinear TF, smoothed IDF, each group L2-normalised on its own): chosen by 5-fold
cross-validation on the default bot's training examples, where they beat binary word and 3-5
character grams. Computed here, not by sklearn, so serving needs no pickled
vectorizer and a word's character grams are looked up once and cached."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
"""sklearn's default token pattern: words of two or more word characters."""
CHAR_MIN, CHAR_MAX = 2, 5
WORD, CHAR = "w:", "c:"
"""Prefixes of the two groups in `ngrams.json` (word uni/bigrams, character grams)."""


def word_grams(text: str) -> list[str]:
    """Words and word bigrams of lower-cased text (sklearn's word analyzer, ngram_range=(1, 2))."""
    toks = _TOKEN.findall(text)
    return toks + [f"{a} {b}" for a, b in itertools.pairwise(toks)]


def chunk_grams(chunk: str) -> list[str]:
    """Character grams of one whitespace-free chunk padded with spaces, as sklearn's `char_wb`
    makes them (a chunk shorter than n is counted once, whole, and longer n are skipped)."""
    w = f" {chunk} "
    out: list[str] = []
    for n in range(CHAR_MIN, CHAR_MAX + 1):
        if len(w) <= n:
            out.append(w)
            break
        out.extend(w[i : i + n] for i in range(len(w) - n + 1))
    return out


def grams(text: str) -> list[str]:
    """Every gram of a text, prefixed by its group, repeats kept."""
    low = text.lower()
    out = [WORD + g for g in word_grams(low)]
    for chunk in low.split():
        out.extend(CHAR + g for g in chunk_grams(chunk))
    return out


@dataclass(frozen=True, slots=True)
class Bag:
    """An `nn.EmbeddingBag` input: flat ids, per-text offsets, per-id weights."""

    ids: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor


class NgramVocab:
    """Index 0 is reserved (no known n-gram, weight 1 on a zero row), so every text has at least
    one entry. `idf[i]` is the smoothed inverse document frequency of gram i (as sklearn's
    TfidfVectorizer computes it); a text's weights are (1 + log count) x IDF, the word grams
    and the character grams each L2-normalised to 1."""

    CACHE = 100_000

    def __init__(self, index: dict[str, int], idf: Sequence[float] | None = None):
        self.index = index
        self.idf = list(idf) if idf is not None else [1.0] * (len(index) + 1)
        if len(self.idf) != len(index) + 1:
            raise ValueError(f"{len(self.idf)} idf weights for {len(index) + 1} n-grams")
        self.is_char = [False] * (len(index) + 1)
        self._word: dict[str, int] = {}
        self._char: dict[str, int] = {}
        for g, i in index.items():
            self.is_char[i] = g.startswith(CHAR)
            (self._char if self.is_char[i] else self._word)[g[2:]] = i
        self._chunks: dict[str, tuple[int, ...]] = {}
        self._idf = np.asarray(self.idf, dtype=np.float64)
        self._is_char = np.asarray(self.is_char, dtype=np.int64)

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

    def vector(self, text: str) -> tuple[list[int], list[float]]:
        """The text's known grams (sorted ids) and their weights; ([0], [1.0]) when none."""
        _, ids, weights = self.arrays([text])
        return ids.tolist(), weights.tolist()

    def arrays(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, id, weight) of every known gram of every text, by row then id; a text without
        one gets (row, 0, 1.0). Only the look-ups are per text; counting, TF-IDF and the two
        norms are done for the whole batch by numpy."""
        word = self._word
        flat: list[int] = []
        sizes: list[int] = []
        for t in texts:
            low = t.lower()
            start = len(flat)
            flat += [i for g in word_grams(low) if (i := word.get(g))]
            for chunk in low.split():
                flat += self._chunk(chunk)
            sizes.append(len(flat) - start)
        n, width = len(texts), len(self)
        row_of = np.repeat(np.arange(n, dtype=np.int64), sizes)
        keys, counts = np.unique(
            row_of * width + np.asarray(flat, dtype=np.int64), return_counts=True
        )
        rows, ids = keys // width, keys % width
        raw = (1.0 + np.log(counts)) * self._idf[ids]
        slot = rows * 2 + self._is_char[ids]
        norms = np.sqrt(np.bincount(slot, weights=raw * raw, minlength=2 * n))
        weights = raw / norms[slot]
        empty = np.setdiff1d(np.arange(n, dtype=np.int64), rows)
        if len(empty):
            at = np.searchsorted(rows, empty)
            rows = np.insert(rows, at, empty)
            ids = np.insert(ids, at, 0)
            weights = np.insert(weights, at, 1.0)
        return rows, ids, weights

    def encode(self, text: str) -> list[int]:
        return self.vector(text)[0]

    def _chunk(self, chunk: str) -> tuple[int, ...]:
        """A chunk's character gram ids (repeats kept), cached: words repeat, so serving spends
        little time here."""
        hit = self._chunks.get(chunk)
        if hit is None:
            char = self._char
            hit = tuple(i for g in chunk_grams(chunk) if (i := char.get(g)))
            if len(self._chunks) < self.CACHE:
                self._chunks[chunk] = hit
        return hit

    def bag(self, texts: Sequence[str]) -> Bag:
        rows, ids, weights = self.arrays(texts)
        offsets = np.searchsorted(rows, np.arange(len(texts), dtype=np.int64))
        return Bag(
            torch.from_numpy(ids),
            torch.from_numpy(offsets.astype(np.int64)),
            torch.from_numpy(weights.astype(np.float32)),
        )
