"""The product's real brain (trained intent model + the default flows) for end-to-end tests,
built by the same `load_brain` as `serve`, over the tiny model `trained_model_dir` caches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from gateway.brain import Brain, load_brain


@pytest.fixture(scope="session")
def real_brain_settings(trained_model_dir: Path) -> dict[str, Any]:
    """Settings overrides that make any gateway built in a test use the real brain."""
    return {"model_dir": trained_model_dir}


@pytest.fixture
async def real_brain(real_brain_settings: dict[str, Any]) -> AsyncIterator[Brain]:
    brain = load_brain(load_settings(**real_brain_settings), progress=False)
    await brain.start(background=False)
    try:
        yield brain
    finally:
        await brain.stop()
