"""A release's held-out figures (`heldout.json` in its directory), written when the gate measured
it: what the review inbox shows as the offline figures beside the live ones. Kept apart from the
gate so a process that only reads them (the console) never loads the model's libraries."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

FILE = "heldout.json"


class Measured(Protocol):
    """What the gate's `Evaluation` says of a model."""

    @property
    def accuracy(self) -> float: ...
    @property
    def n(self) -> int: ...
    @property
    def precision(self) -> dict[str, float]: ...
    @property
    def recall(self) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class Figures:
    """The held-out figures of a release, as read back."""

    accuracy: float
    n: int
    precision: dict[str, float]
    recall: dict[str, float]


def write(model_dir: Path, measured: Measured) -> None:
    body = {
        "accuracy": round(measured.accuracy, 4),
        "n": measured.n,
        "precision": {k: round(v, 4) for k, v in sorted(measured.precision.items())},
        "recall": {k: round(v, 4) for k, v in sorted(measured.recall.items())},
    }
    tmp = model_dir / f".{FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
    os.replace(tmp, model_dir / FILE)


def read(model_dir: Path) -> Figures | None:
    """None when the release has none (trained with `--out`, or before figures were kept) or
    the file is not what `write` makes."""
    try:
        raw: Any = json.loads((model_dir / FILE).read_text(encoding="utf-8"))
        return Figures(
            accuracy=float(raw["accuracy"]),
            n=int(raw["n"]),
            precision={str(k): float(v) for k, v in raw["precision"].items()},
            recall={str(k): float(v) for k, v in raw["recall"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
