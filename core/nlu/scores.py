"""A release's held-out figures (`heldout.json` in its directory), written when the gate measured
it: what the review inbox shows as the offline figures beside the live ones."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.nlu.gate import Evaluation

FILE = "heldout.json"


def write(model_dir: Path, evaluation: Evaluation) -> None:
    body = {
        "accuracy": round(evaluation.accuracy, 4),
        "n": evaluation.n,
        "precision": {k: round(v, 4) for k, v in sorted(evaluation.precision.items())},
        "recall": {k: round(v, 4) for k, v in sorted(evaluation.recall.items())},
    }
    tmp = model_dir / f".{FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
    os.replace(tmp, model_dir / FILE)


def read(model_dir: Path) -> Evaluation | None:
    """None when the release has none (trained with `--out`, or before figures were kept) or
    the file is not what `write` makes."""
    try:
        raw: Any = json.loads((model_dir / FILE).read_text(encoding="utf-8"))
        return Evaluation(
            accuracy=float(raw["accuracy"]),
            recall={str(k): float(v) for k, v in raw["recall"].items()},
            n=int(raw["n"]),
            precision={str(k): float(v) for k, v in raw["precision"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
