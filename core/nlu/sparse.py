"""The sparse half of the ensemble: a multinomial logistic regression on TF-IDF n-grams, fitted
to convergence with L2 (sklearn, lbfgs; deterministic), copied into the network's n-gram
embedding bag so serving runs one torch forward pass."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from core.nlu.network import IntentNet
from core.nlu.ngrams import NgramVocab


def features(vocab: NgramVocab, texts: Sequence[str]) -> sp.csr_matrix:
    rows, ids, weights = vocab.arrays(texts)
    return sp.csr_matrix((weights, (rows, ids)), shape=(len(texts), len(vocab)), dtype=np.float64)


def fit(
    vocab: NgramVocab, texts: Sequence[str], y: Sequence[int], n_labels: int, c: float, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights [n-grams, labels], bias [labels]). Every label must occur in `y`."""
    with warnings.catch_warnings():
        # a cap on iterations is a choice; a model short of full convergence is still fine
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr = LogisticRegression(C=c, max_iter=iters).fit(features(vocab, texts), list(y))
    coef = np.asarray(lr.coef_)
    bias = np.asarray(lr.intercept_)
    if n_labels == 2 and coef.shape[0] == 1:  # binary: one logit z, as softmax([-z/2, z/2])
        coef = np.concatenate([-coef / 2, coef / 2])
        bias = np.concatenate([-bias / 2, bias / 2])
    if coef.shape[0] != n_labels:
        raise ValueError(f"{coef.shape[0]} classes fitted, {n_labels} expected")
    # one float32 copy, transposed (not a float64 one first: [n-grams, labels] is the largest
    # matrix of the model)
    weight = torch.from_numpy(np.ascontiguousarray(coef.T, dtype=np.float32))
    weight[0] = 0.0  # index 0 (no known n-gram) carries nothing
    return weight, torch.from_numpy(bias).float()


def install(net: IntentNet, weight: torch.Tensor, bias: torch.Tensor) -> None:
    with torch.no_grad():
        net.ngram.weight.copy_(weight)
        net.ngram_bias.copy_(bias)


def probs(
    vocab: NgramVocab, weight: torch.Tensor, bias: torch.Tensor, texts: Sequence[str]
) -> torch.Tensor:
    """The regression's probabilities, before it is installed in a network."""
    x = features(vocab, texts).astype(np.float32)  # never a float64 copy of the weights
    logits = torch.from_numpy(np.asarray(x @ weight.numpy(), dtype=np.float32)) + bias
    return torch.softmax(logits, dim=-1)
