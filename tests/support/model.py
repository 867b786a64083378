"""Session fixtures giving trained intent models: `trained_model_dir` (a tiny model of the
default bot in `flows/`) and `fixture_model_dir` (the NLU tests' small data). Each is cached under
`var/test-model/` by a key of its data and training settings, so later runs reuse it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.errors import ModelDirError
from core.nlu import artifacts
from core.nlu.config import FORMAT, TINY, TrainConfig
from core.nlu.data import Example, data_hash, load_flows_dir
from core.nlu.train import train

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "test-model"
FIXTURES = ROOT / "tests" / "fixtures" / "nlu"


def cached_model(name: str, examples: Sequence[Example], config: TrainConfig = TINY) -> Path:
    key = hashlib.sha256(
        f"{FORMAT}{data_hash(examples)}{json.dumps(config.as_dict(), sort_keys=True)}".encode()
    ).hexdigest()[:16]
    out = CACHE / f"{name}-{key}"
    try:
        artifacts.check(out)
    except ModelDirError:
        train(examples, out, config, progress=False)
    return out


@pytest.fixture(scope="session")
def trained_model_dir() -> Path:
    """A tiny model of the default bot (flows/), trained in seconds; threshold in the dir."""
    return cached_model("bot", load_flows_dir(ROOT / "flows"))


@pytest.fixture(scope="session")
def fixture_model_dir() -> Path:
    return cached_model("fixture", load_flows_dir(FIXTURES))
