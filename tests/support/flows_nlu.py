"""A TEST DOUBLE of the intent model for dialogue and story tests: it knows only the example
sentences of the flows (exact match after normalising, else word overlap), so flows can be
tested without training. The product's parser is the trained model in core/nlu."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.entities import EntityExtractor
from core.ports import IntentScore, NluResult

FLOWS = Path(__file__).resolve().parents[2] / "flows"
_MARKUP = re.compile(r"\[([^\]]*)\]\(([a-z_]+)\)")
_WORD = re.compile(r"[a-z0-9<>_']+")


def _norm(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


class ExampleNlu:
    """Deterministic: exact example → 0.95; otherwise the best word-overlap (Jaccard) score."""

    def __init__(self, examples: dict[str, list[str]], extractor: EntityExtractor):
        self._extractor = extractor
        self._examples: list[tuple[str, frozenset[str], tuple[str, ...]]] = []
        for intent, texts in examples.items():
            for t in texts:
                words = _norm(_MARKUP.sub(lambda m: f"<{m.group(2)}>", str(t)))
                self._examples.append((intent, frozenset(words), words))

    @classmethod
    def from_dir(cls, directory: Path, extractor: EntityExtractor) -> ExampleNlu:
        data = yaml.safe_load((directory / "intents.yml").read_text())["intents"]
        return cls({k: v["examples"] for k, v in data.items()}, extractor)

    def ready(self) -> bool:
        return True

    async def parse(self, text: str) -> NluResult:
        entities = self._extractor.extract(text)
        marked = text
        for e in sorted(entities, key=lambda e: -e.start):
            if e.type in ("order_id", "email"):
                marked = marked[: e.start] + f"<{e.type}>" + marked[e.end :]
        words = _norm(marked)
        best: dict[str, float] = {}
        for intent, bag, seq in self._examples:
            if seq == words:
                score = 0.95
            else:
                union = bag | set(words)
                score = 0.9 * len(bag & set(words)) / len(union) if union else 0.0
            best[intent] = max(best.get(intent, 0.0), score)
        ranking = tuple(
            IntentScore(i, c) for i, c in sorted(best.items(), key=lambda kv: -kv[1])[:5]
        )
        if not words or not ranking:
            return NluResult(text=text, intent=None, confidence=0.0, entities=entities)
        top = ranking[0]
        return NluResult(text, top.intent, top.confidence, ranking, entities)
