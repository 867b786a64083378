"""The console's tests: misunderstood turns recorded for the review inbox, a copy of the bot's
flows to label into, and a bot with a live model deployed for the retrain button."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.conversations import Said, TurnFact, TurnLog
from core.models import ConversationRef, Sender
from core.nlu.releases import Releases
from core.sql.store import SqlConversations
from gateway.console.retrain_api import RETRAINER
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.flows_copy import flows_copy
from tests.support.train_tiny import COMMAND

__all__ = ["flows_copy", "record"]

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


async def record(
    store: SqlConversations,
    chat: str,
    at: float,
    text: str,
    intent: str | None,
    confidence: float | None,
    outcome: str,
    *,
    channel: str = "telegram",
    feedback: str | None = None,
) -> None:
    """One recorded turn as the worker writes it (and the customer's 👍/👎 on it)."""
    ref = ConversationRef(channel=channel, chat_id=chat)
    key = f"{chat}-{at}"
    ranking = [(intent, confidence or 0.0)] if intent else []
    fact = TurnFact(key, at, text, intent, confidence, ranking, outcome, None, None, 0.2)
    said = [Said(key, text, at)]
    who = Sender(id=chat, name=f"Customer {chat}")
    await store.record_turn(
        TurnLog(ref, who, said, [], intent, confidence, {}, False, None, None, turn=fact)
    )
    if feedback:
        answer = TurnLog(
            ref, who, [], [], intent, confidence, {}, False, None, None, feedback=(feedback, key)
        )
        await store.record_turn(answer)
