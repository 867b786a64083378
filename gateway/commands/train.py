"""`train`: build the intent model from the bot's intent examples into the model directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.commands._common import add_log_level, settings_from
from gateway.nlu_loader import train_now


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train the intent model from the flows' intent examples",
        description=(
            "Train the intent model from the `intents:` of every YAML file under FLOWS_DIR "
            "(except heldout/), or from --data, into MODEL_DIR (or --out). BASE_MODEL is "
            "fine-tuned when it can be loaded (hub name or local checkpoint directory); "
            "otherwise a DistilBERT is trained from scratch with its own WordPiece vocabulary. "
            "Examples of the reserved intent out_of_scope only tune the confidence threshold."
        ),
    )
    p.add_argument("--data", type=Path, help="a YAML file (or flows directory) of intents")
    p.add_argument("--out", type=Path, help="model directory to write (default: MODEL_DIR)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_log_level(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    result = train_now(settings, data=args.data, out=args.out, progress=not args.no_progress)
    thr = result.threshold
    print(
        f"trained {len(result.labels)} intents ({result.encoder} encoder, {result.epochs} epochs, "
        f"{result.seconds:.0f} s): validation accuracy {100 * result.val_accuracy:.2f}%, "
        f"threshold {thr['threshold']:.3f} -> {result.model_dir}"
    )
    return 0
