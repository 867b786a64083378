"""`bench nlu`: the intent model benchmark (bench/nlu.py) against a TF-IDF baseline."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "nlu.py"
FLAGS = ("quick", "skip_clinc", "skip_bot")
VALUES = ("clinc", "flows", "epochs", "requests", "out")


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmarks (nlu)")
    inner = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    n = inner.add_parser(
        "nlu",
        help="intent model vs TF-IDF + logistic regression (accuracy, latency, throughput)",
        description=(
            "Runs bench/nlu.py: CLINC150 (train on train, tune on val + oos_val) and the "
            "default bot's held-out split, the intent model beside a TF-IDF + logistic "
            "regression baseline, one table. The full run takes 20-40 minutes on 2 cores."
        ),
    )
    n.add_argument("--quick", action="store_true", help="a 30-intent slice of CLINC150")
    n.add_argument("--skip-clinc", action="store_true")
    n.add_argument("--skip-bot", action="store_true")
    n.add_argument("--clinc", help="CLINC150 train_val.json")
    n.add_argument("--flows", help="the bot's flows directory (with heldout/)")
    n.add_argument("--epochs", help="override the training epochs")
    n.add_argument("--requests", help="messages per throughput run (default 2000)")
    n.add_argument("--out", help="where models and nlu.json go (default var/bench)")
    n.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    argv = [f"--{f.replace('_', '-')}" for f in FLAGS if getattr(args, f)]
    for v in VALUES:
        if getattr(args, v) is not None:
            argv += [f"--{v}", str(getattr(args, v))]
    sys.argv = [str(SCRIPT), *argv]
    runpy.run_path(str(SCRIPT), run_name="__main__")
    return 0
