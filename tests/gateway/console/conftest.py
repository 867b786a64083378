"""The retrain button's tests: a bot's flows in a temporary folder with a live model deployed."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.nlu.releases import Releases
from gateway.console.retrain_api import RETRAINER
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.train_tiny import COMMAND

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"


@dataclass(frozen=True)
class Bot:
    flows: Path
    releases: Releases
    live: Path

    @property
    def settings(self) -> dict[str, Path]:
        return {
            "flows_dir": self.flows,
            "data_dir": self.releases.root.parent,
            "model_dir": self.releases.pointer,
        }


@pytest.fixture
def bot(tmp_path: Path, fixture_model_dir: Path) -> Bot:
    """The NLU tests' small bot, with the model trained on it (right on its held-out split)
    deployed as the live model."""
    flows = tmp_path / "flows"
    shutil.copytree(FIXTURES, flows)
    rel = Releases(root=tmp_path / "var" / "models", pointer=tmp_path / "var" / "model")
    live = rel.new_dir()
    shutil.copytree(fixture_model_dir, live)
    rel.deploy(live)
    return Bot(flows, rel, live)


def worse_live_model(bot: Bot) -> None:
    """The live model answers every example with the next intent's name: any sane candidate
    beats it."""
    labels = bot.live / "labels.json"
    names = json.loads(labels.read_text())
    labels.write_text(json.dumps(names[1:] + names[:1]))


@asynccontextmanager
async def retrain_console(gateway_factory: Any, bot: Bot) -> AsyncIterator[Any]:
    """A gateway serving `bot`'s folders whose retrain button trains the tiny model, with an
    agent (ann) and an admin (root); yields the test client."""
    async with gateway_factory(nlu=KeywordNlu(), dialogue=EchoDialogue(), **bot.settings) as (
        client,
        services,
    ):
        client.app[RETRAINER].command = list(COMMAND)
        await services.desk.agents.add("ann", "agent", "ann-password")
        await services.desk.agents.add("root", "admin", "root-password")
        yield client
