"""Policy: threshold, ambiguity, clarifying buttons, fallbacks to handoff, global intents,
interruption with a resume offer, handoff and hand-back."""

from __future__ import annotations

from pathlib import Path

from tests.core.dialogue.helpers import Chat, make_runner, texts

BOT = """\
entities:
  order_id: {regex: '\\b[A-Z]\\d[A-Z]\\d[A-Z]\\d\\b'}
policy:
  below: 0.6
  margin: 0.1
  handoff_after: 2
  fallback: "Not sure what you mean."
  clarify: "Did you mean one of these?"
  titles: {order_status: Track an order}
flows:
  orders:
    title: your order
    when: {intent: order_status}
    slots:
      order_id: {entity: order_id}
    steps:
      - ask: "Order number?"
        slot: order_id
      - say: "Order {{ slots.order_id }} found."
  refund:
    title: your refund
    when: {intent: refund}
    slots:
      reason: {}
      sure: {intents: {affirm: true, deny: false}, invalid: "Yes or no?"}
    steps:
      - ask: "Why?"
        slot: reason
      - ask: "Sure?"
        slot: sure
        buttons: [{label: "Yes", intent: affirm}, {label: "No", intent: deny}]
      - say: "Refund {{ 'opened' if slots.sure else 'dropped' }} ({{ slots.reason }})."
  help:
    title: help
    when: {intent: help}
    steps: [{say: "I can help with orders."}]
  greet:
    when: {intent: greet}
    steps: [{say: "Hello."}]
  cancel:
    when: {intent: cancel}
    steps: [{say: "Cancelled."}, {end: conversation}]
  human:
    when: {intent: human}
    steps: [{handoff: support}]
"""


async def test_below_threshold_asks_which_intent_with_buttons(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    replies = await chat.say(
        "order?", "order_status", 0.4, ranking=(("order_status", 0.4), ("refund", 0.3))
    )
    assert replies[0].text == "Did you mean one of these?"
    assert [(b.label, b.payload) for b in replies[0].buttons] == [
        ("Track an order", "/order_status"),
        ("your refund", "/refund"),
    ]
    assert chat.session.fallbacks == 0  # a clarification is not a miss
    assert texts(await chat.say(payload="/order_status")) == "Order number?"
    assert chat.session.fallbacks == 0


async def test_threshold_given_at_construction_wins(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT, threshold=0.3)
    assert texts(await Chat(runner).say("order?", "order_status", 0.4)) == "Order number?"


async def test_two_intents_too_close_are_clarified(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    ranking = (("order_status", 0.48), ("refund", 0.45), ("greet", 0.07))
    replies = await Chat(runner).say("my order refund", "order_status", 0.48, ranking)
    assert replies[0].text == "Did you mean one of these?"
    runner, _, _ = make_runner(tmp_path, BOT, threshold=0.4)
    replies = await Chat(runner).say("my order refund", "order_status", 0.48, ranking)
    assert replies[0].text == "Did you mean one of these?"
    ranking = (("order_status", 0.8), ("refund", 0.1))
    replies = await Chat(runner).say("my order", "order_status", 0.8, ranking)
    assert replies[0].text == "Order number?"


async def test_consecutive_fallbacks_hand_over_with_a_record(tmp_path: Path) -> None:
    runner, _, target = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    assert texts(await chat.say("blorp", "out_of_scope", 0.9)) == "Not sure what you mean."
    replies = await chat.say("zzz")
    assert "person" in texts(replies)
    assert chat.session.handoff and chat.session.handoff_queue == "fallback"
    record = target.records[0]
    assert record.conversation == "test:c1" and record.queue == "fallback"
    assert record.transcript[-1]["user"] == "zzz"
    assert await chat.say("hello?", "greet") != []  # told a person will answer
    assert await chat.say("still there?", "greet") == []
    assert "bot again" in texts(await chat.say("/bot"))
    assert not chat.session.handoff and chat.session.fallbacks == 0
    assert texts(await chat.say("hi", "greet")) == "Hello."


async def test_handoff_after_setting_overrides_the_policy(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT, handoff_after=3)
    chat = Chat(runner)
    await chat.say("blorp", "out_of_scope", 0.9)
    await chat.say("zork", "out_of_scope", 0.9)
    assert not chat.session.handoff
    await chat.say("quux", "out_of_scope", 0.9)
    assert chat.session.handoff


async def test_asking_for_a_person_mid_flow_sends_the_slots(tmp_path: Path) -> None:
    runner, _, target = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    await chat.say("refund", "refund")
    await chat.say("broken zip", "refund", 0.3)
    replies = await chat.say("human please", "human")
    assert "person" in texts(replies)
    record = target.records[0]
    assert record.slots == {"reason": "broken zip"}
    assert record.intent == "human" and record.confidence == 0.95
    assert record.queue == "support"
    assert chat.session.stack == [] and chat.session.paused == []


async def test_interruption_offers_to_resume(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    await chat.say("where is my order", "order_status")
    replies = await chat.say("hello", "greet")
    assert replies[0].text == "Hello."
    assert replies[1].text == "Shall we get back to your order?"
    assert [b.payload for b in replies[1].buttons] == ["/affirm", "/deny"]
    assert texts(await chat.say(payload="/affirm")) == "Order number?"
    assert texts(await chat.say("A1B2C3", "order_status", 0.2)) == "Order A1B2C3 found."


async def test_declining_the_resume_forgets_the_flow(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    await chat.say("where is my order", "order_status")
    await chat.say("help", "help")
    await chat.say("no", "deny")
    assert chat.session.paused == [] and chat.flow is None


async def test_free_text_answer_is_not_taken_for_a_topic_switch(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    await chat.say("refund", "refund")
    assert texts(await chat.say("hello it broke", "greet", 0.7)) == "Sure?"
    assert chat.session.slots["reason"] == "hello it broke"
    assert texts(await chat.say("maybe", "greet", 0.2)) == "Yes or no?\nSure?"
    assert texts(await chat.say("yes", "affirm")) == "Refund opened (hello it broke)."


async def test_global_intent_interrupts_a_free_text_question(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    await chat.say("refund", "refund")
    replies = await chat.say("help", "help")
    assert replies[0].text == "I can help with orders."
    assert "your refund" in replies[1].text
    assert texts(await chat.say("yes", "affirm")) == "Why?"


async def test_cancel_clears_everything(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    await chat.say("where is my order", "order_status")
    await chat.say("help", "help")
    await chat.say("refund", "refund")
    assert texts(await chat.say("cancel", "cancel")) == "Cancelled."
    assert chat.session.stack == [] and chat.session.paused == []


async def test_empty_text_is_prompted_and_not_a_fallback(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    for text in ("", "   "):
        assert "didn't catch that" in texts(await chat.say(text))
    assert chat.session.fallbacks == 0
