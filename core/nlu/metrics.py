"""Evaluation of the intent model: accuracy, macro-F1, per-intent P/R/F1, most confused pairs,
out-of-scope recall at a threshold, and the choice of that threshold on held-out predictions by
the cost of a wrong answer against a clarification."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score, precision_recall_fscore_support

from core.nlu.calibration import expected_calibration_error
from core.nlu.config import CLARIFY_COST, OUT_OF_SCOPE_SHARE
from core.nlu.data import OUT_OF_SCOPE, Example


@dataclass(frozen=True, slots=True)
class Scores:
    """Per example: the gold intent, the argmax intent and its probability."""

    gold: list[str]
    predicted: list[str]
    confidence: np.ndarray

    @classmethod
    def of(cls, examples: Sequence[Example], probs: torch.Tensor, labels: Sequence[str]) -> Scores:
        conf, idx = probs.max(dim=-1) if len(examples) else (torch.zeros(0), torch.zeros(0))
        return cls(
            [e.intent for e in examples],
            [labels[int(i)] for i in idx],
            conf.numpy().astype(np.float64),
        )

    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(in-scope confidence, in-scope correct, out-of-scope confidence)."""
        gold = np.array(self.gold, dtype=object)
        pred = np.array(self.predicted, dtype=object)
        oos = gold == OUT_OF_SCOPE
        return self.confidence[~oos], (gold == pred)[~oos], self.confidence[oos]


def choose_threshold(
    scores: Scores,
    n_labels: int,
    clarify_cost: float = CLARIFY_COST,
    out_of_scope_share: float = OUT_OF_SCOPE_SHARE,
) -> dict[str, Any]:
    """The threshold with the least expected cost per message on held-out predictions: a wrong
    answer costs 1 (an in-scope message answered as the wrong intent, or an out-of-scope one
    answered at all), a clarification of an in-scope message `clarify_cost`, and out-of-scope
    messages are `out_of_scope_share` of the traffic whatever their share of the examples
    (none without out-of-scope examples). With calibrated confidences and no out-of-scope
    messages the best threshold is about 1 - `clarify_cost`: answer when a wrong answer is
    less likely than that. The cost curve is flat near its minimum, so the lowest threshold
    within one standard error of the least cost is taken: of equally good thresholds, the one
    that answers most (out-of-fold models are less sure than the model refitted on every
    example). Never under 1.5 / number of intents."""
    conf, correct, oos = scores.split()
    floor = min(1.5 / max(n_labels, 1), 0.9)
    share = out_of_scope_share if len(oos) else 0.0
    cands = np.unique(np.concatenate([conf, oos]))
    cands = np.unique(np.maximum(cands, floor)) if len(cands) else np.array([max(floor, 0.5)])
    answered = conf[None, :] >= cands[:, None]
    inside = np.where(answered, np.where(correct[None, :], 0.0, 1.0), clarify_cost)
    outside = (oos[None, :] >= cands[:, None]).astype(np.float64)
    n_in, n_out = max(len(conf), 1), max(len(oos), 1)
    cost = (1 - share) * inside.sum(axis=1) / n_in + share * outside.sum(axis=1) / n_out
    best = int(np.argmin(cost))
    spread = (1 - share) ** 2 * inside[best].var() / n_in if len(conf) else 0.0
    spread += share**2 * outside[best].var() / n_out if len(oos) else 0.0
    at = int(np.flatnonzero(cost <= cost[best] + spread**0.5 + 1e-12)[0])
    kept = answered[at]
    return {
        "threshold": round(float(cands[at]), 4),
        "method": (
            "least expected cost (wrong answer 1, clarification "
            f"{clarify_cost:g}, out of scope {100 * share:g}% of messages), "
            "lowest within one standard error"
        ),
        "expected_cost": float(cost[at]),
        "accuracy_with_threshold": float((correct & kept).mean()) if len(conf) else 0.0,
        "clarified": float((~kept).mean()) if len(conf) else 0.0,
        "oos_recall": float((oos < cands[at]).mean()) if len(oos) else None,
    }


def report(
    scores: Scores, threshold: float, n_labels: int, top_confused: int = 10
) -> dict[str, Any]:
    conf, correct, oos = scores.split()
    gold_in = [g for g in scores.gold if g != OUT_OF_SCOPE]
    pred_in = [p for g, p in zip(scores.gold, scores.predicted, strict=True) if g != OUT_OF_SCOPE]
    intents = sorted(set(gold_in))
    per: dict[str, Any] = {}
    macro = 0.0
    if gold_in:
        p, r, f, s = precision_recall_fscore_support(
            gold_in, pred_in, labels=intents, zero_division=0
        )
        per = {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(intents)
        }
        macro = float(f1_score(gold_in, pred_in, labels=intents, average="macro", zero_division=0))
    confused = Counter((g, p) for g, p in zip(gold_in, pred_in, strict=True) if g != p)
    return {
        "n_examples": len(scores.gold),
        "n_in_scope": len(gold_in),
        "n_out_of_scope": len(oos),
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "accuracy_with_threshold": float((correct & (conf >= threshold)).mean())
        if len(correct)
        else 0.0,
        "macro_f1": macro,
        "oos_recall": float((oos < threshold).mean()) if len(oos) else None,
        "threshold": threshold,
        "ece": expected_calibration_error(*scores.split()[:2]),
        "best_threshold_here": choose_threshold(scores, n_labels),
        "most_confused": [
            {"gold": g, "predicted": p, "count": n}
            for (g, p), n in confused.most_common(top_confused)
        ],
        "per_intent": per,
    }


def format_report(rep: dict[str, Any], per_intent: bool = True) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}%"

    best = rep["best_threshold_here"]
    lines = [
        f"examples: {rep['n_examples']} ({rep['n_in_scope']} in scope, "
        f"{rep['n_out_of_scope']} out of scope)",
        f"accuracy (in scope, argmax): {pct(rep['accuracy'])}",
        f"accuracy with threshold {rep['threshold']:.3f}: {pct(rep['accuracy_with_threshold'])}",
        f"macro-F1: {pct(rep['macro_f1'])}",
        f"out-of-scope recall at {rep['threshold']:.3f}: {pct(rep['oos_recall'])}",
        f"expected calibration error (in scope, 10 bins): {pct(rep.get('ece'))}",
        f"threshold this data would choose: {best['threshold']:.3f} ({best['method']})",
    ]
    if rep["most_confused"]:
        lines.append("most confused (gold -> predicted: count):")
        lines += [f"  {c['gold']} -> {c['predicted']}: {c['count']}" for c in rep["most_confused"]]
    if per_intent and rep["per_intent"]:
        width = max(len(k) for k in rep["per_intent"])
        lines.append(f"{'intent':<{width}}  precision  recall     f1  support")
        for name, m in rep["per_intent"].items():
            lines.append(
                f"{name:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  "
                f"{m['support']:7d}"
            )
    return "\n".join(lines)


def write_json(rep: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rep, indent=1), encoding="utf-8")


def confusion_png(scores: Scores, path: Path) -> None:
    """In-scope examples, argmax predictions; rows are gold intents, columns predicted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [
        (g, p) for g, p in zip(scores.gold, scores.predicted, strict=True) if g != OUT_OF_SCOPE
    ]
    names = sorted({g for g, _ in pairs} | {p for _, p in pairs})
    pos = {n: i for i, n in enumerate(names)}
    mat = np.zeros((len(names), len(names)), dtype=np.int64)
    for g, p in pairs:
        mat[pos[g], pos[p]] += 1
    size = min(max(6.0, 0.18 * len(names) + 3), 40.0)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(mat, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6 if len(names) > 40 else 8)
    ax.set_yticks(range(len(names)), names, fontsize=6 if len(names) > 40 else 8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("intent confusion matrix (in scope)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
