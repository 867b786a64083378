"""Temperature scaling: one number, fitted on validation predictions, that makes the model's
confidences mean what they say (of the messages scored 0.8, about 80% are right), so the
confidence threshold and the clarification floor are probabilities, not arbitrary scores."""

from __future__ import annotations

import math

import numpy as np
import torch

GRID = tuple(round(math.exp(x / 20), 4) for x in range(-40, 61))
"""Temperatures tried, from about 0.14 to 20, evenly on a log scale."""
EPS = 1e-9


def calibrate(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities made sharper (T < 1) or softer (T > 1); T = 1 changes nothing. The
    ranking of intents never changes."""
    if temperature == 1.0:
        return probs
    return torch.softmax(torch.log(probs.clamp_min(EPS)) / temperature, dim=-1)


def fit_temperature(probs: torch.Tensor, gold: torch.Tensor) -> float:
    """The temperature with the least negative log-likelihood of the gold intents."""
    if len(gold) == 0:
        return 1.0
    logp = torch.log(probs.clamp_min(EPS))
    best, best_t = math.inf, 1.0
    for t in GRID:
        nll = float(torch.nn.functional.cross_entropy(logp / t, gold))
        if nll < best:
            best, best_t = nll, t
    return best_t


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """The gap between confidence and accuracy, averaged over equal-width confidence bins
    weighted by how many predictions fall in each."""
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(float(confidence[mask].mean()) - float(correct[mask].mean()))
    return total
