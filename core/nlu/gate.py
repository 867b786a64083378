"""The retrain gate: a candidate model is deployed only when, on held-out examples it never saw,
its accuracy is not lower than the live model's and no intent's recall falls by more than a
margin. Retraining can break what worked; this says what, before customers find out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.nlu import artifacts
from core.nlu.data import OUT_OF_SCOPE, Example
from core.nlu.predictor import Predictor


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One model on the held-out examples: in-scope accuracy (argmax), recall per intent, and
    precision per intent (of the examples it gave that intent, the share that were)."""

    accuracy: float
    recall: dict[str, float]
    n: int
    precision: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Verdict:
    """What the gate decided, and why; printed by `gateway train`."""

    deploy: bool
    candidate: Evaluation
    live: Evaluation | None
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        live = "none" if self.live is None else f"{100 * self.live.accuracy:.2f}%"
        head = (
            f"held-out accuracy: candidate {100 * self.candidate.accuracy:.2f}%, live {live} "
            f"({self.candidate.n} examples)"
        )
        return "\n".join([head, *(f"  - {r}" for r in self.reasons)])


def evaluate(model_dir: Path, examples: Sequence[Example]) -> Evaluation:
    """Loads `model_dir` (a `ModelDirError` when it cannot be served) and scores it."""
    predictor = Predictor(artifacts.load(model_dir))
    scoped = [e for e in examples if e.intent != OUT_OF_SCOPE]
    probs = predictor.predict([e.text for e in scoped])
    guessed = [predictor.labels[int(i)] for i in probs.argmax(dim=-1)] if scoped else []
    return score(scoped, guessed)


def score(scoped: Sequence[Example], guessed: Sequence[str | None]) -> Evaluation:
    """The figures of `guessed` (an intent per in-scope example, None: none) against them."""
    total = Counter(e.intent for e in scoped)
    right = Counter(e.intent for e, g in zip(scoped, guessed, strict=True) if e.intent == g)
    recall = {intent: right[intent] / n for intent, n in total.items()}
    given = Counter(g for g in guessed if g is not None)
    precision = {intent: right[intent] / n for intent, n in given.items()}
    accuracy = sum(right.values()) / len(scoped) if scoped else 0.0
    return Evaluation(accuracy, recall, len(scoped), precision)


def judge(candidate: Evaluation, live: Evaluation | None, max_drop: float) -> Verdict:
    """Without a live model, any loadable candidate is deployed."""
    verdict = Verdict(True, candidate, live)
    if live is None:
        verdict.reasons.append("no live model: the candidate is the first")
        return verdict
    if candidate.accuracy < live.accuracy:
        verdict.deploy = False
        verdict.reasons.append(
            f"accuracy fell: {100 * live.accuracy:.2f}% -> {100 * candidate.accuracy:.2f}%"
        )
    for intent, before in sorted(live.recall.items()):
        after = candidate.recall.get(intent, 0.0)
        if before - after > max_drop + 1e-9:
            verdict.deploy = False
            verdict.reasons.append(
                f"intent {intent} recall fell {100 * before:.1f}% -> {100 * after:.1f}% "
                f"(more than the {100 * max_drop:.1f} points GATE_MAX_INTENT_DROP allows)"
            )
    if verdict.deploy:
        verdict.reasons.append(
            f"accuracy not lower and no intent fell more than {100 * max_drop:.1f} points"
        )
    return verdict
