"""Evaluation of the intent model: accuracy, macro-F1, per-intent P/R/F1, most confused pairs,
out-of-scope recall at a threshold, and the choice of that threshold on validation data."""

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


def choose_threshold(scores: Scores, n_labels: int) -> dict[str, Any]:
    """With out-of-scope examples: the threshold maximising the mean of in-scope accuracy (with
    the threshold) and out-of-scope recall. Without: the confidence that 95% of correctly
    classified validation examples reach (never under 1.5 / number of intents)."""
    conf, correct, oos = scores.split()
    floor = min(1.5 / max(n_labels, 1), 0.9)
    if len(oos) == 0 or len(conf) == 0:
        good = conf[correct] if correct.any() else conf
        t = float(np.quantile(good, 0.05)) if len(good) else 0.5
        t = max(floor, t)
        return {"threshold": round(t, 4), "method": "5th percentile of correct confidences"}
    cands = np.unique(np.concatenate([conf, oos, [floor]]))
    acc = (correct[None, :] & (conf[None, :] >= cands[:, None])).mean(axis=1)
    rec = (oos[None, :] < cands[:, None]).mean(axis=1)
    best = int(np.argmax((acc + rec) / 2))
    return {
        "threshold": round(float(cands[best]), 4),
        "method": "max of (in-scope accuracy with threshold + out-of-scope recall) / 2",
        "accuracy_with_threshold": float(acc[best]),
        "oos_recall": float(rec[best]),
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
