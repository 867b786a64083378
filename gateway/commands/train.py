"""`train`: a candidate intent model from the flows' examples, deployed only if it passes the gate
(or, with --out, a model written to a directory and nothing else)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gateway.commands._common import add_log_level, settings_from
from gateway.model_release import retrain, verdict_json
from gateway.nlu_loader import train_now


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a candidate intent model; deploy it if it passes the gate",
        description=(
            "Train the intent model from the `intents:` of every YAML file under FLOWS_DIR "
            "(except heldout/), or from --data. BASE_MODEL is fine-tuned when it can be loaded "
            "(hub name or local checkpoint directory); otherwise a DistilBERT is trained from "
            "scratch with its own WordPiece vocabulary. Examples of the reserved intent "
            "out_of_scope only tune the confidence threshold. The candidate goes to "
            "DATA_DIR/models/<time>/ and is measured with the live model on FLOWS_DIR/heldout/: "
            "it is deployed (MODEL_DIR switched to it, every running process picks it up) only "
            "when its accuracy is not lower and no intent's recall falls by more than "
            "GATE_MAX_INTENT_DROP; otherwise the reasons are printed and the exit code is 1. "
            "`python -m gateway model rollback` serves the previous model again."
        ),
    )
    p.add_argument("--data", type=Path, help="a YAML file (or flows directory) of intents")
    p.add_argument(
        "--out", type=Path, help="only train into this directory: no gate, nothing deployed"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--json",
        action="store_true",
        help="end with the gate's verdict as one line of JSON (what the console's button reads)",
    )
    add_log_level(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    progress = not args.no_progress
    if args.out is not None:
        result = train_now(settings, data=args.data, out=args.out, progress=progress)
    else:
        outcome = retrain(settings, data=args.data, progress=progress)
        result = outcome.trained
    thr = result.threshold
    print(
        f"trained {len(result.labels)} intents ({result.encoder} encoder, {result.epochs} epochs, "
        f"{result.seconds:.0f} s): validation accuracy {100 * result.val_accuracy:.2f}%, "
        f"threshold {thr['threshold']:.3f} -> {result.model_dir}"
    )
    if args.out is not None:
        return 0
    print(outcome.verdict.summary())
    if args.json:
        print(json.dumps(verdict_json(outcome)))
    if outcome.deployed:
        print(f"deployed: {settings.model_dir} -> {outcome.candidate}")
        return 0
    print(f"refused: the live model stays; the candidate is kept in {outcome.candidate}")
    return 1
