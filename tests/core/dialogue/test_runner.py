"""The runner's steps: say, ask/slots, call and on_error, if/else, goto, end, templates."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from structlog.testing import capture_logs

from core.dialogue.templates import SAFE_FALLBACK
from core.errors import ActionError
from core.models import ConversationRef, Inbound, Sender
from core.ports import Entity, IntentScore, NluResult
from core.session import FAILED_ACTIONS_KEPT, Session
from tests.core.dialogue.helpers import Chat, make_runner, texts

ORDERS = """\
entities:
  order_id: {regex: '\\b[A-Z]\\d[A-Z]\\d[A-Z]\\d\\b'}
flows:
  orders:
    title: your order
    when: {intent: order_status}
    slots:
      order_id:
        entity: order_id
        retries: 1
        invalid: "Not an order number."
        on_fail:
          - say: "Giving up on the order number."
    steps:
      - ask: "Order number?"
        slot: order_id
      - call: orders.lookup
        with: {order_id: "{{ slots.order_id }}"}
        as: order
        on_error:
          - say: "The order system is down."
      - if: "not order.found"
        then:
          - say: "No order {{ slots.order_id }}."
          - retry: order_id
        else:
          - say: ["Order {{ slots.order_id }} is {{ order.status }}.",
                  "{{ slots.order_id }}: {{ order.status }}."]
  hello:
    when: {intent: greet}
    steps:
      - say: "Hi {{ nobody.name }}"
      - goto: orders
"""


async def test_ask_then_call_then_answer(tmp_path: Path) -> None:
    runner, actions, _ = make_runner(tmp_path, ORDERS)
    chat = Chat(runner)
    assert texts(await chat.say("where is my order", "order_status")) == "Order number?"
    assert chat.flow == "orders" and chat.session.stack[-1].asking == "order_id"
    reply = texts(await chat.say("it is A1B2C3", "order_status", 0.3))
    assert "A1B2C3" in reply and "shipped" in reply
    assert actions.calls == [("orders.lookup", {"order_id": "A1B2C3"})]
    assert actions.keys == [f"{chat.session.conversation.key}:2:1"]  # the turn, its 1st call
    assert chat.flow is None and chat.session.slots["order_id"] == "A1B2C3"


async def test_entity_in_the_first_message_fills_the_slot(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, ORDERS)
    reply = texts(await Chat(runner).say("where is Z9Y8X7", "order_status"))
    assert "Z9Y8X7" in reply and "shipped" in reply


async def test_variations_are_picked_at_random(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, ORDERS)
    seen = {texts(await Chat(runner).say("A1B2C3", "order_status")) for _ in range(12)}
    assert seen == {"Order A1B2C3 is shipped.", "A1B2C3: shipped."}


async def test_invalid_answer_then_retry_limit_runs_on_fail(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, ORDERS)
    chat = Chat(runner)
    await chat.say("where is my order", "order_status")
    assert texts(await chat.say("dunno")) == "Not an order number.\nOrder number?"
    assert texts(await chat.say("still dunno")) == "Giving up on the order number."
    assert chat.flow is None


async def test_backend_says_no_such_order_counts_as_a_retry(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, ORDERS)
    chat = Chat(runner)
    await chat.say("where is my order", "order_status")
    assert texts(await chat.say("Q1Q1Q1")) == "No order Q1Q1Q1.\nOrder number?"
    assert chat.session.stack[-1].slots == {}
    assert "Giving up" in texts(await chat.say("W2W2W2"))


async def test_failing_action_runs_on_error(tmp_path: Path) -> None:
    runner, actions, _ = make_runner(tmp_path, ORDERS)
    actions.fail.add("orders.lookup")
    chat = Chat(runner)
    with capture_logs() as logs:
        reply = texts(await chat.say("A1B2C3", "order_status"))
    assert reply == "The order system is down."
    assert chat.flow is None
    assert any(e["event"] == "action.failed" for e in logs)


async def test_a_failed_action_is_kept_for_the_agent_without_personal_data(
    tmp_path: Path,
) -> None:
    runner, actions, _ = make_runner(tmp_path, ORDERS)
    actions.errors["orders.lookup"] = ActionError(
        "GET https://shop.test/o?email=ann@example.com&key=s3cret: HTTP 503 for ann@example.com"
    )
    chat = Chat(runner)
    await chat.say("A1B2C3", "order_status")
    [failed] = chat.session.failed_actions
    assert (failed.flow, failed.action) == ("orders", "orders.lookup")
    assert failed.error == "ActionError: GET https://shop.test/o?…: HTTP 503 for [email]"
    assert failed.at > 0
    for n in range(FAILED_ACTIONS_KEPT + 2):  # only the latest few are kept
        await chat.say(f"A1B2C{n}", "order_status")
    assert len(chat.session.failed_actions) == FAILED_ACTIONS_KEPT


async def test_action_without_on_error_still_answers_clearly(tmp_path: Path) -> None:
    flows = """\
    flows:
      refund:
        when: {intent: refund}
        steps:
          - call: orders.refund
          - say: done
    """
    runner, actions, _ = make_runner(tmp_path, flows)
    actions.fail.add("orders.refund")
    assert "try again" in texts(await Chat(runner).say("refund", "refund"))


async def test_failing_template_renders_safe_fallback_and_logs(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, ORDERS)
    chat = Chat(runner)
    with capture_logs() as logs:
        replies = await chat.say("hi", "greet")
    assert replies[0].text == SAFE_FALLBACK
    assert replies[1].text == "Order number?"  # goto went on to the orders flow
    assert chat.flow == "orders"
    assert any(e["event"] == "template.failed" for e in logs)


async def test_set_if_else_end_and_loop_guard(tmp_path: Path) -> None:
    flows = """\
    flows:
      hello:
        when: {intent: greet}
        slots:
          mood: {}
        steps:
          - set: mood
            value: "{{ 'good' if user == 'hi' else 'bad' }}"
          - if: "slots.mood == 'good'"
            then: [{say: "glad"}]
            else: [{say: "sorry"}]
          - id: again
            say: "loop"
          - jump: again
    """
    runner, _, _ = make_runner(tmp_path, flows)
    chat = Chat(runner)
    with capture_logs() as logs:
        replies = await chat.say("hi", "greet")
    assert replies[0].text == "glad" and replies[1].text == "loop"
    assert chat.flow is None
    assert any(e["event"] == "flow.looping" for e in logs)
    assert (await chat.say("hey", "greet"))[0].text == "sorry"


# -- entities: in the text the model read, off the event loop, within a budget -------------------


def _turn(text: str, *, extracted: bool = False) -> tuple[Session, Inbound, NluResult]:
    conv = ConversationRef(channel="test", chat_id="c1")
    inbound = Inbound(event_id="e1", conversation=conv, sender=Sender(id="u"), text=text)
    nlu = NluResult(text, "order_status", 0.95, (IntentScore("order_status", 0.95),))
    return Session.new(conv), inbound, replace(nlu, extracted=extracted)


async def test_entities_are_looked_for_off_the_loop_in_the_text_the_model_read(
    tmp_path: Path,
) -> None:
    runner, actions, _ = make_runner(tmp_path, ORDERS)
    threads: list[str] = []
    extract = runner._extractor.extract  # type: ignore[union-attr]

    def recording(text: str) -> tuple[Entity, ...]:
        threads.append(threading.current_thread().name)
        return extract(text)

    runner._extractor.extract = recording  # type: ignore[union-attr,method-assign]
    far = "x " * 300 + "A1B2C3"  # the order number past the model's 512 characters
    outcome = await runner.step(*_turn(far))
    assert texts(list(outcome.replies)) == "Order number?" and actions.calls == []
    near = await runner.step(*_turn("it is A1B2C3"))
    assert "shipped" in texts(list(near.replies))
    assert threads and threading.main_thread().name not in threads


async def test_what_the_parser_already_looked_through_is_not_read_again(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, ORDERS)

    def must_not_run(text: str) -> tuple[Entity, ...]:
        raise AssertionError("extracted twice")

    runner._extractor.extract = must_not_run  # type: ignore[union-attr,method-assign]
    outcome = await runner.step(*_turn("it is A1B2C3", extracted=True))
    assert texts(list(outcome.replies)) == "Order number?"


async def test_an_extraction_over_budget_leaves_the_turn_without_entities(
    tmp_path: Path,
) -> None:
    runner, _, _ = make_runner(tmp_path, ORDERS, extract_budget=0.05)
    release = threading.Event()

    def stuck(text: str) -> tuple[Entity, ...]:
        release.wait(10)
        return ()

    runner._extractor.extract = stuck  # type: ignore[union-attr,method-assign]
    try:
        with capture_logs() as logs:
            outcome = await runner.step(*_turn("it is A1B2C3"))
        assert texts(list(outcome.replies)) == "Order number?"
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["entities.over_budget"]
    finally:
        release.set()


ENDINGS = """\
flows:
  orders:
    when: {intent: order_status}
    slots:
      order_id: {}
    steps:
      - ask: "Order number?"
        slot: order_id
      - say: "Order {{ slots.order_id }} is on its way."
  human:
    when: {intent: human}
    steps:
      - handoff: support
  greet:
    when: {intent: greet}
    steps:
      - say: "Hi!"
      - end: conversation
"""


async def test_the_outcome_says_which_flow_completed_or_was_abandoned(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, ENDINGS)
    chat = Chat(runner)
    await chat.say("where is my order", "order_status")
    assert chat.last is not None and chat.last.extra["flow_end"] is None  # still asking
    await chat.say("A1B2C3", "order_status", 0.3)
    assert chat.last is not None and chat.last.extra["flow_end"] == ("completed", "orders")
    await chat.say("hi", "greet")  # its own `end:` is where it was meant to end
    assert chat.last is not None and chat.last.extra["flow_end"] == ("completed", "greet")
    await chat.say("where is my order", "order_status")
    await chat.say("a person please", "human")
    assert chat.last is not None and chat.last.extra["flow_end"] == ("abandoned", "orders")
