"""The handoff inside the turn: the customer is told where they stand, the bot stays silent
while people have the conversation, and every message reaches the conversation store."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.handoff import State
from core.models import ConversationRef, Inbound, Sender
from core.ports import IntentScore, NluResult
from gateway.services import Services
from tests.core.dialogue.helpers import make_runner
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.handoff import PersonDialogue

CONV = ConversationRef(channel="test", chat_id="c1")
_n = iter(range(1_000_000))


async def say(services: Services, text: str) -> None:
    inbound = Inbound(
        event_id=f"e{next(_n)}",
        conversation=CONV,
        sender=Sender(id="u1", name="Ann"),
        text=text,
    )
    assert services.engine is not None
    done = services.engine.expect(inbound)
    await services.storage.queue.put(inbound)
    await done


async def test_handoff_tells_the_customer_and_keeps_every_message(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=PersonDialogue(), channels={"test": recording_channel}
    ) as (_, services):
        desk = services.desk
        await say(services, "track A1B2C3")
        await say(services, "I want a person")
        texts = recording_channel.texts()
        assert texts[1] == "passing you to a person"
        assert texts[2].startswith("Nobody from the support team is online this moment")
        # While waiting: silent inside the reminder interval, and every message kept.
        await say(services, "hello?")
        await say(services, "<b>anyone</b>")
        assert len(recording_channel.texts()) == 3
        conv = await desk.conversations.by_key(CONV.key)
        assert conv is not None and conv.state == State.WAITING
        assert (conv.intent, conv.handoff_queue, conv.customer_name) == ("human", "support", "Ann")
        assert conv.slots == {"order_id": "A1B2C3"}
        said = [m.text for m in await desk.conversations.messages(conv.id)]
        assert said == [
            "track A1B2C3",
            "echo track A1B2C3",
            "I want a person",
            "passing you to a person",
            texts[2],
            "hello?",
            "<b>anyone</b>",
        ]
        # The customer takes the bot back: recorded as theirs.
        await say(services, "/bot")
        assert recording_channel.texts()[-1] == "bot again"
        trail = await desk.conversations.transitions(conv.id)
        assert [(t.to_state, t.actor) for t in trail] == [
            (State.WAITING, "bot"),
            (State.BOT, "customer"),
        ]


async def test_reminders_while_waiting_but_not_with_an_agent(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        handoff_reminder_interval=0,
    ) as (_, services):
        desk = services.desk
        ann = await desk.agents.add("ann", "agent", "pw")
        await desk.agents.seen(ann.id)
        await say(services, "a person please")
        assert recording_channel.texts() == ["passing you to a person"]  # someone is online
        await say(services, "still there?")
        assert recording_channel.texts()[-1].startswith("A person from our support team has been")
        conv = await desk.conversations.by_key(CONV.key)
        assert conv is not None
        await desk.conversations.move(
            conv.id, State.AGENT, actor="agent:ann", agent_id=ann.id, holder_id=ann.id
        )
        await say(services, "thanks")
        assert len(recording_channel.texts()) == 2
        assert (await desk.conversations.messages(conv.id))[-1].text == "thanks"


async def test_outside_support_hours_says_when(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    today = datetime.now(UTC).strftime("%a")
    # Open one minute a day, at a time that is not now.
    minute = "03:00-03:01" if datetime.now(UTC).hour != 3 else "15:00-15:01"
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        support_hours=f"{today} {minute}",
    ) as (_, services):
        started = time.time()
        await say(services, "person")
        told = recording_channel.texts()[-1]
        assert told.startswith("Our support team is away now")
        assert f"their hours: {today} {minute}" in told and "from " in told
        assert time.time() - started < 10


async def test_every_turn_and_message_is_recorded_with_redacted_text(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=PersonDialogue(), channels={"test": recording_channel}
    ) as (_, services):
        await say(services, "hi, I am ann@example.com, card 4111 1111 1111 1111")
        await say(services, "I want a person")
        conv = await services.desk.conversations.by_key(CONV.key)
        assert conv is not None
        turns = await services.desk.conversations.turns(conv.id)
        assert [(t.text, t.intent, t.outcome) for t in turns] == [
            ("hi, I am [email], card [card]", "greet", "answered"),
            ("I want a person", "human", "handoff"),
        ]
        assert all(t.latency is not None and 0 <= t.latency < 30 for t in turns)
        said = [m.text for m in await services.desk.conversations.messages(conv.id)]
        # The console's transcript too, and the bot's echo of it.
        assert said[:2] == ["hi, I am [email], card [card]", "echo hi, I am [email], card [card]"]
        assert not any("ann@example.com" in t or "4111" in t for t in said), said


async def test_raw_text_is_kept_when_the_team_says_so(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        store_raw_text=True,
    ) as (_, services):
        await say(services, "hi, I am ann@example.com")
        conv = await services.desk.conversations.by_key(CONV.key)
        assert conv is not None
        turns = await services.desk.conversations.turns(conv.id)
        assert [t.text for t in turns] == ["hi, I am ann@example.com"]
        said = await services.desk.conversations.messages(conv.id)
        assert said[0].text == "hi, I am ann@example.com"


class OrderNlu:
    """'order' in the text: order_status, surely; anything else: nothing."""

    async def parse(self, text: str) -> NluResult:
        if "order" in text:
            return NluResult(text, "order_status", 0.95, (IntentScore("order_status", 0.95),))
        return NluResult.empty(text)

    def ready(self) -> bool:
        return True


async def test_feedback_by_number_is_kept_against_the_turn_that_asked(
    gateway_factory: Any, recording_channel: RecordingChannel, tmp_path: Path
) -> None:
    runner, _, _ = make_runner(tmp_path, FEEDBACK_BOT)
    async with gateway_factory(
        nlu=OrderNlu(), dialogue=runner, channels={"test": recording_channel}
    ) as (_, services):
        await say(services, "where is my order")
        assert recording_channel.texts()[-1] == "Did that help?"
        await say(services, "2")  # a channel without buttons numbers them: 2 is 👎
        assert recording_channel.texts()[-1] == "Thanks!"
        await say(services, "where is my order")  # asked once a day at most
        assert recording_channel.texts()[-1] == "Your order is on its way."
        conv = await services.desk.conversations.by_key(CONV.key)
        assert conv is not None
        turns = await services.desk.conversations.turns(conv.id)
        assert [(t.outcome, t.flow_end, t.asked_feedback, t.feedback) for t in turns] == [
            ("answered", "completed", True, "down"),
            ("answered", None, False, None),
            ("answered", "completed", False, None),
        ]
        assert turns[1].text == "2"  # what the customer typed


FEEDBACK_BOT = """\
policy:
  feedback:
    after: [orders]
    thanks: "Thanks!"
flows:
  orders:
    when: {intent: order_status}
    steps:
      - say: "Your order is on its way."
"""


SHOP_DOWN_BOT = """\
flows:
  orders:
    when: {intent: order_status}
    steps:
      - call: orders.lookup
        with: {order_id: "A1B2C3"}
        as: order
        on_error:
          - say: "The order system is not answering. Let me get a person."
          - handoff: orders
      - say: "Order A1B2C3 is {{ order.status }}."
"""


async def test_the_agent_sees_the_action_that_failed_before_the_handoff(
    gateway_factory: Any, recording_channel: RecordingChannel, tmp_path: Path
) -> None:
    runner, actions, _ = make_runner(tmp_path, SHOP_DOWN_BOT)
    actions.fail.add("orders.lookup")
    async with gateway_factory(
        nlu=OrderNlu(), dialogue=runner, channels={"test": recording_channel}
    ) as (_, services):
        await say(services, "where is my order")
        assert recording_channel.texts()[0].startswith("The order system is not answering.")
        conv = await services.desk.conversations.by_key(CONV.key)
        assert conv is not None and conv.state == State.WAITING
        [failed] = conv.failed_actions
        assert (failed.flow, failed.action) == ("orders", "orders.lookup")
        assert failed.error == "ActionError: backend down"
