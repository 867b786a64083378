"""`gateway_turns_total` tells what each turn came to: answered, clarified, fallback, handoff or
error, by intent (known intents only, else `other`), through the real engine and flow runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.engine import Engine, EngineSettings
from core.metrics import Metrics
from core.models import ConversationRef, Inbound, Sender
from core.outbox import Outbox
from core.outcomes import intent_label, outcome_of
from core.ports import IntentScore, NluResult, TurnOutcome
from core.queue import MemoryQueue
from core.ratelimit import MemoryRateLimiter
from core.store import MemorySentLog, MemoryStore
from tests.core.dialogue.helpers import make_runner
from tests.core.dialogue.test_policy import BOT
from tests.support.doubles import RecordingChannel

SCRIPT = {
    "where is my order": ("order_status", 0.95, ()),
    "order or refund?": ("order_status", 0.4, (("order_status", 0.4), ("refund", 0.3))),
    "qwxz": ("refund", 0.01, ()),  # under the floor of clarifying options
    "blah": ("refund", 0.01, ()),
    "boom": ("", 0.0, ()),
}


class ScriptNlu:
    async def parse(self, text: str) -> NluResult:
        intent, conf, ranking = SCRIPT[text]
        if text == "boom":
            raise RuntimeError("model exploded")
        scores = tuple(IntentScore(i, c) for i, c in ranking) or (IntentScore(intent, conf),)
        return NluResult(text, intent, conf, scores)

    def ready(self) -> bool:
        return True


def msg(chat: str, n: int, text: str = "", payload: str | None = None) -> Inbound:
    return Inbound(
        event_id=f"{chat}-{n}",
        conversation=ConversationRef(channel="test", chat_id=chat),
        sender=Sender(id=chat),
        text=text,
        payload=payload,
    )


def turns(metrics: Metrics, outcome: str, intent: str) -> float:
    labels = {"channel": "test", "outcome": outcome, "intent": intent}
    return metrics.registry.get_sample_value("gateway_turns_total", labels) or 0.0


async def test_each_outcome_is_counted_by_intent(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT, threshold=0.6)
    metrics = Metrics()
    metrics.known_intents = lambda: runner.bot.intents
    queue = MemoryQueue(spill_path=tmp_path / "spill.jsonl")
    outbox = Outbox(
        {"test": RecordingChannel()}, MemorySentLog(), MemoryRateLimiter(), metrics, backoff=0.01
    )
    engine = Engine(
        queue=queue,
        store=MemoryStore(ttl=600),
        nlu=ScriptNlu(),
        dialogue=runner,
        outbox=outbox,
        metrics=metrics,
        settings=EngineSettings(max_attempts=1, retry_backoff=0.01),
    )
    script = [
        msg("a", 1, "where is my order"),  # answered: the flow asks for the number
        msg("b", 1, "order or refund?"),  # clarified: two buttons offered
        msg("c", 1, "qwxz"),  # fallback
        msg("c", 2, "blah"),  # second miss in a row: handed off
        msg("d", 1, payload="/<script>x</script>"),  # a forged button: not a label
        msg("e", 1, "boom"),  # the model fails: error
    ]
    await queue.start()
    await engine.start()
    try:
        for m in script:  # one at a time: c's two turns must not be coalesced into one
            done = engine.expect(m)
            assert await queue.put(m)
            await asyncio.wait_for(done, 10)
    finally:
        await engine.stop(2)
    assert turns(metrics, "answered", "order_status") == 1
    assert turns(metrics, "clarified", "order_status") == 1
    assert turns(metrics, "fallback", "refund") == 1
    assert turns(metrics, "handoff", "refund") == 1
    assert turns(metrics, "fallback", "other") == 1
    assert turns(metrics, "error", "none") == 1
    assert "script" not in metrics.render().decode()


def test_outcome_of_prefers_handoff() -> None:
    assert outcome_of(TurnOutcome(handoff=True, extra={"missed": "fallback"})) == "handoff"
    assert outcome_of(TurnOutcome(extra={"missed": "clarified"})) == "clarified"
    assert outcome_of(TurnOutcome(extra={"missed": "something else"})) == "answered"
    assert intent_label("refund", {"refund"}) == "refund"
    assert intent_label("ref\nund", {"refund"}) == "other" and intent_label(None, ()) == "none"
