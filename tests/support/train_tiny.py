"""`python -m tests.support.train_tiny [train options]`: the product's `gateway train` with the
tests' tiny model, so a retrain started from the console in a test takes seconds."""

from __future__ import annotations

import sys

from core.nlu.config import TINY
from gateway import nlu_loader
from gateway.cli import main

COMMAND = (sys.executable, "-m", "tests.support.train_tiny", "--json")
"""What the console's retrain button runs in tests, in place of `python -m gateway train --json`."""

if __name__ == "__main__":
    nlu_loader.train_config = lambda settings: TINY
    sys.exit(main(["train", *sys.argv[1:]]))
