"""Small bots written inline, a scripted intent parser and a recording handoff target."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.dialogue import FlowRunner, load_bot
from core.entities import EntityExtractor, RegexEntity
from core.errors import ActionError
from core.models import ConversationRef, Inbound, Outbound, Sender
from core.ports import HandoffRecord, IntentScore, NluResult, TurnOutcome
from core.session import Session

INTENTS = """\
intents:
  greet: {examples: [hi]}
  order_status: {examples: [where is my order]}
  refund: {examples: [refund]}
  help: {examples: [help]}
  cancel: {examples: [cancel]}
  human: {examples: [human]}
  affirm: {examples: ["yes"]}
  deny: {examples: ["no"]}
"""


class FakeActions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.keys: list[str | None] = []
        self.fail: set[str] = set()
        self.errors: dict[str, Exception] = {}
        """What a named action raises instead of `fail`'s "backend down"."""

    def names(self) -> set[str]:
        return {"orders.lookup", "orders.refund"}

    async def call(self, name: str, args: Mapping[str, Any], key: str | None = None) -> Any:
        self.calls.append((name, dict(args)))
        self.keys.append(key)
        if name in self.errors:
            raise self.errors[name]
        if name in self.fail:
            raise ActionError("backend down", retryable=True)
        if name == "orders.lookup":
            found = args["order_id"] in ("A1B2C3", "Z9Y8X7")
            return {"found": found, "status": "shipped" if found else None}
        return {"ticket_id": "RF-1"}


class Recorder:
    def __init__(self) -> None:
        self.records: list[HandoffRecord] = []

    async def notify(self, record: HandoffRecord) -> None:
        self.records.append(record)


def make_runner(
    tmp_path: Path, flows: str, *, threshold: float | None = None, **kw: Any
) -> tuple[FlowRunner, FakeActions, Recorder]:
    (tmp_path / "intents.yml").write_text(INTENTS)
    (tmp_path / "bot.yml").write_text(textwrap.dedent(flows))
    actions, target = FakeActions(), Recorder()
    bot = load_bot(tmp_path, actions.names())
    extractor = EntityExtractor(
        [RegexEntity(e.name, e.pattern, e.case) for e in bot.entities.values()]
    )
    runner = FlowRunner(
        bot, actions, target, extractor, threshold=threshold, rng=random.Random(1), **kw
    )
    return runner, actions, target


class Chat:
    """Drives a runner the way the engine does: one session, one turn per `say`."""

    def __init__(self, runner: FlowRunner):
        self.runner = runner
        self.session = Session.new(ConversationRef(channel="test", chat_id="c1"))
        self.n = 0
        self.last: TurnOutcome | None = None
        """The outcome of the last turn (its `extra`: what the metrics and the store read)."""

    async def say(
        self,
        text: str = "",
        intent: str | None = None,
        confidence: float = 0.95,
        ranking: tuple[tuple[str, float], ...] = (),
        payload: str | None = None,
    ) -> list[Outbound]:
        self.n += 1
        inbound = Inbound(
            event_id=str(self.n),
            conversation=self.session.conversation,
            sender=Sender(id="u"),
            text=text,
            payload=payload,
        )
        scores = tuple(IntentScore(i, c) for i, c in ranking) or (
            (IntentScore(intent, confidence),) if intent else ()
        )
        nlu = NluResult(text, intent, confidence if intent else 0.0, scores)
        outcome = await self.runner.step(self.session, inbound, nlu)
        self.last = outcome
        # what the engine does with the outcome: the session must survive a JSON round trip
        self.session = Session.model_validate_json(self.session.model_dump_json())
        return list(outcome.replies)

    @property
    def flow(self) -> str | None:
        return self.session.stack[-1].flow if self.session.stack else None


def texts(replies: list[Outbound]) -> str:
    return "\n".join(r.text for r in replies)
