"""The product's real brain (trained intent model + the default flows) for end-to-end tests,
built by the same `load_model_and_flows` as `serve`, over the tiny model `trained_model_dir`
caches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from gateway.lifecycle import run_parts
from gateway.model_and_flows import ModelAndFlows, load_model_and_flows


@pytest.fixture(scope="session")
def real_brain_settings(trained_model_dir: Path) -> dict[str, Any]:
    """Settings overrides that make any gateway built in a test use the real brain."""
    return {"model_dir": trained_model_dir}


@pytest.fixture
async def real_brain(real_brain_settings: dict[str, Any]) -> AsyncIterator[ModelAndFlows]:
    brain = load_model_and_flows(load_settings(**real_brain_settings), progress=False)
    async with run_parts(brain.parts(background=False)):
        yield brain
