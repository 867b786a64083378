"""`nlu eval`: measure the intent model on labelled examples (the held-out split by default)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.errors import ModelDirError, NluDataError, StartupError
from core.nlu import artifacts
from core.nlu.data import load_data
from core.nlu.metrics import Scores, confusion_png, format_report, report, write_json
from core.nlu.predictor import Predictor
from gateway.commands._common import add_log_level, settings_from


def register(sub: Any) -> None:
    p = sub.add_parser("nlu", help="intent model tools (eval)")
    inner = p.add_subparsers(dest="nlu_command", metavar="ACTION", required=True)
    e = inner.add_parser(
        "eval",
        help="accuracy, macro-F1, per-intent P/R/F1, confusions, out-of-scope recall",
        description=(
            "Evaluate the model on labelled examples (default: FLOWS_DIR/heldout/). Prints "
            "in-scope accuracy, accuracy with the threshold, macro-F1, per-intent precision/"
            "recall/F1, the most confused pairs and out-of-scope recall at the threshold "
            "(CONFIDENCE_THRESHOLD, else the one chosen at training), plus the threshold this "
            "data would choose; writes the same as JSON and a confusion-matrix PNG beside it."
        ),
    )
    e.add_argument("--model", type=Path, help="model directory (default: MODEL_DIR)")
    e.add_argument("--data", type=Path, help="YAML file or directory of labelled intents")
    e.add_argument("--json", type=Path, help="report path (default: var/nlu-eval.json)")
    e.add_argument("--threshold", type=float, help="evaluate at this threshold instead")
    add_log_level(e)
    e.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    model_dir = args.model or settings.model_dir
    data = args.data or settings.flows_dir / "heldout"
    try:
        examples = load_data(data)
        loaded = artifacts.load(model_dir)
    except (NluDataError, ModelDirError) as exc:
        raise StartupError(str(exc)) from None
    predictor = Predictor(loaded)
    scores = Scores.of(examples, predictor.predict([e.text for e in examples]), loaded.labels)
    threshold = args.threshold
    if threshold is None:
        threshold = settings.confidence_threshold
    if threshold is None:
        threshold = loaded.threshold
    rep = report(scores, threshold, len(loaded.labels))
    rep["model_dir"] = str(model_dir)
    rep["temperature"] = loaded.temperature
    rep["data"] = str(data)
    out = args.json or settings.data_dir / "nlu-eval.json"
    png = out.with_suffix(".png")
    write_json(rep, out)
    confusion_png(scores, png)
    print(format_report(rep))
    print(f"report: {out}  confusion matrix: {png}")
    return 0
