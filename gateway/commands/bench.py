"""`bench nlu`: the intent model benchmark (bench/nlu.py) against a TF-IDF baseline."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "nlu.py"


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmarks (nlu)")
    inner = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    n = inner.add_parser(
        "nlu",
        help="intent model vs TF-IDF + logistic regression (accuracy, latency, throughput)",
        description="Runs bench/nlu.py; arguments after `nlu` are passed on (see --help there).",
        add_help=False,
    )
    n.add_argument("rest", nargs=argparse.REMAINDER)
    n.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sys.argv = [str(SCRIPT), *args.rest]
    runpy.run_path(str(SCRIPT), run_name="__main__")
    return 0
