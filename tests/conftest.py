"""Shared fixtures live in `tests/support/` (one module per concern); each is loaded here as a
pytest plugin, so a new support module needs no edit of this file."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = sorted(
    f"tests.support.{p.stem}"
    for p in (Path(__file__).parent / "support").glob("*.py")
    if not p.stem.startswith("_")
)
