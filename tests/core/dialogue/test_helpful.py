"""The turn that helps: ids heard anywhere, plausible clarifications only, a menu when nothing is
plausible, no handoff for one emoji, frustration, two requests, other languages."""

from __future__ import annotations

from pathlib import Path

from core.dialogue.language import language_detector
from core.dialogue.mood import frustrated
from core.ports import NluResult
from tests.core.dialogue.helpers import Chat, make_runner, texts

BOT = """\
entities:
  order_id: {regex: '\\b[A-Z]\\d[A-Z]\\d[A-Z]\\d\\b'}
policy:
  below: 0.6
  handoff_after: 3
  clarify_floor: 0.2
  small_talk: [greet, affirm, deny, cancel]
  menu: [order_status, refund, human]
  entity_flows: {order_id: order_status}
  fallback: "I can track orders and handle refunds."
  clarify: "Is it one of these?"
  waiting: "A person will answer you here."
  apology: "Sorry about the trouble."
  handoff: "Passing you to a person."
  languages: [en]
  other_language:
    es: {say: "Lo siento, solo hablo inglés.", button: "Hablar con una persona"}
flows:
  greet:
    when: {intent: greet}
    steps: [{say: "Hello!"}]
  cancel:
    when: {intent: cancel}
    steps: [{say: "Okay, stopped."}, {end: conversation}]
  human:
    when: {intent: human}
    steps: [{handoff: support}]
  help:
    when: {intent: help}
    steps: [{say: "I can help."}]
  orders:
    title: your order
    when: {intent: order_status}
    slots:
      order_id: {entity: order_id, retries: 2, invalid: "Not an order number."}
    steps:
      - ask: "Order number?"
        slot: order_id
      - call: orders.lookup
        with: {order_id: "{{ slots.order_id }}"}
        as: order
      - say: "Order {{ slots.order_id }} is {{ order.status }}."
  refund:
    title: your refund
    when: {intent: refund}
    slots:
      order_id: {entity: order_id}
    steps:
      - ask: "Which order?"
        slot: order_id
      - say: "Refund for {{ slots.order_id }} noted."
"""


async def test_a_bare_order_number_starts_order_status(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    reply = texts(await chat.say("A1B2C3", "greet", 0.3))
    assert "Order A1B2C3 is shipped" in reply


async def test_an_order_number_with_a_request_starts_that_request_not_order_status(
    tmp_path: Path,
) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    # The model unsure, the request it ranks first takes an order number: that one starts.
    ranking = (("refund", 0.45), ("order_status", 0.3), ("greet", 0.1))
    reply = texts(await chat.say("i want to return Z9Y8X7", "refund", 0.45, ranking))
    assert reply == "Refund for Z9Y8X7 noted."
    # The surest intent is small talk ("cancel" the dialogue): the request is still the order's.
    ranking = (("cancel", 0.7), ("refund", 0.2), ("order_status", 0.05))
    reply = texts(await chat.say("cancel A1B2C3 pls", "cancel", 0.7, ranking))
    assert reply == "Refund for A1B2C3 noted."
    # Nothing plausible takes an order number: it is looked up, as a bare number is.
    ranking = (("help", 0.3), ("refund", 0.1))
    reply = texts(await chat.say("hmm A1B2C3", "help", 0.3, ranking))
    assert reply == "Order A1B2C3 is shipped."


async def test_an_id_heard_earlier_is_never_asked_again(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    await chat.say("where is A1B2C3", "order_status")
    reply = texts(await chat.say("i want a refund", "refund"))
    assert reply == "Refund for A1B2C3 noted."


async def test_handoff_record_carries_every_slot_heard(tmp_path: Path) -> None:
    runner, _, target = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    await chat.say("hi, my order is Z9Y8X7 and mail me at jo@example.com", "greet")
    await chat.say("a person please", "human")
    slots = target.records[-1].slots
    assert slots["order_id"] == "Z9Y8X7" and slots["email"] == "jo@example.com"


async def test_clarification_offers_only_plausible_intents_never_small_talk(
    tmp_path: Path,
) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    ranking = (("greet", 0.45), ("order_status", 0.3), ("refund", 0.21), ("help", 0.04))
    replies = await chat.say("hmm my parcel thing", "greet", 0.45, ranking)
    assert [b.label for r in replies for b in r.buttons] == ["your order", "your refund"]
    assert chat.session.fallbacks == 0  # a clarification is not a miss


async def test_nothing_plausible_says_what_the_bot_can_do_with_buttons(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    replies = await chat.say("whats the weather", "help", 0.1, (("help", 0.1),))
    assert texts(replies) == "I can track orders and handle refunds."
    assert [b.payload for b in replies[0].buttons] == ["/order_status", "/refund", "/human"]


async def test_one_emoji_or_question_mark_never_hands_over(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    for text in ("?", "🤔", "📦", "??", "🙂"):
        await chat.say(text, "help", 0.1)
    assert not chat.session.handoff and chat.session.fallbacks == 0


async def test_several_failed_turns_hand_over(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    for text in ("blorp", "zzzap quux", "frobnicate"):
        replies = await chat.say(text, "help", 0.1)
    assert chat.session.handoff and "Passing you to a person." in texts(replies)


async def test_a_customer_waiting_for_a_person_is_told_so_once(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    await chat.say("a human please", "human")
    assert texts(await chat.say("hello??", "greet")) == "A person will answer you here."
    assert await chat.say("still there?", "greet") == []


async def test_angry_and_stuck_hands_over_angry_and_understood_is_helped(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    reply = texts(await chat.say("WHERE IS MY ORDER, I asked THREE times!!", "order_status"))
    assert reply.startswith("Sorry about the trouble.") and "Order number?" in reply
    assert not chat.session.handoff
    await chat.say("are you even listening? useless", "greet", 0.2)
    assert chat.session.handoff


async def test_nah_forget_it_at_a_question_stops_it(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    await chat.say("where is my order", "order_status")
    reply = texts(await chat.say("nah forget it", "cancel", 0.9))
    assert "Not an order number" not in reply and chat.flow is None


async def test_a_bare_yes_answers_a_yes_no_question(tmp_path: Path) -> None:
    chat2 = Chat(make_runner(tmp_path, BOT)[0])
    await chat2.say("where is my order", "order_status")
    await chat2.say("i want a refund", "refund")  # order_status is paused, refund asks
    await chat2.say("A1B2C3", "greet", 0.2)  # refund done; resume offered
    reply = texts(await chat2.say("yes", "greet", 0.3))  # the model unsure of a bare yes
    assert "Order A1B2C3 is shipped" in reply


async def test_two_requests_in_one_message_are_both_handled(tmp_path: Path) -> None:
    runner = make_runner(tmp_path, BOT)[0]

    async def parse(text: str) -> NluResult:
        intent = "refund" if "refund" in text else "order_status" if "order" in text else None
        return NluResult(text, intent, 0.9 if intent else 0.0)

    runner.use_parser(parse)
    chat = Chat(runner)
    reply = texts(await chat.say("where is order A1B2C3 and also i want a refund", "refund"))
    assert "Order A1B2C3 is shipped." in reply and "Refund for A1B2C3 noted." in reply


async def test_another_language_is_answered_in_it_with_a_person_offered(tmp_path: Path) -> None:
    chat = Chat(make_runner(tmp_path, BOT)[0])
    replies = await chat.say("Hola, ¿dónde está mi pedido? Lo compré hace una semana", "greet", 0.4)
    assert texts(replies) == "Lo siento, solo hablo inglés."
    assert [(b.label, b.payload) for b in replies[0].buttons] == [
        ("Hablar con una persona", "/human")
    ]
    assert not chat.session.handoff and chat.session.fallbacks == 0


def test_languages_are_told_apart_and_short_or_english_text_is_left_alone() -> None:
    detect = language_detector(["en", "es", "de", "fr", "pt", "it"])
    assert detect("Hallo, wo ist meine Bestellung? Ich warte schon lange.") == "de"
    assert detect("Bonjour, je voudrais annuler ma commande s'il vous plaît") == "fr"
    assert detect("Olá, quero devolver um produto que chegou com defeito") == "pt"
    assert detect("Ciao, vorrei sapere quando arriva il mio ordine") == "it"
    assert detect("yo wheres my shoes at, order a1b2c3") in (None, "en")
    assert detect("hola") is None


def test_frustration_is_shouting_or_angry_words_not_one_capital_word() -> None:
    assert frustrated("this is RIDICULOUS I've asked THREE TIMES")
    assert frustrated("are you even listening to me")
    assert frustrated("useless bot 😡")
    assert not frustrated("I said NOT the blue one")
    assert not frustrated("where is my order A1B2C3")
    assert not frustrated("tell me a joke")


REFUND = """\
      order_id: {entity: order_id}
    steps:
      - ask: "Which order?"
        slot: order_id
      - say: "Refund for {{ slots.order_id }} noted."
"""
WITH_REASON = """\
      order_id: {entity: order_id}
      reason: {retries: 1}
    steps:
      - ask: "Which order?"
        slot: order_id
      - ask: "Why are you sending it back?"
        slot: reason
      - say: "Return of {{ slots.order_id }} because {{ slots.reason }}."
"""
RETURNS = BOT.replace(REFUND, WITH_REASON)
"""The bot above, its refund asking for a reason in the customer's own words."""


async def at_the_reason(tmp_path: Path) -> Chat:
    chat = Chat(make_runner(tmp_path, RETURNS)[0])
    assert texts(await chat.say("return A1B2C3", "refund")) == "Why are you sending it back?"
    return chat


async def test_a_free_text_answer_that_reads_like_cancel_is_the_answer(tmp_path: Path) -> None:
    chat = await at_the_reason(tmp_path)
    reply = texts(await chat.say("changed my mind", "cancel", 0.99))
    assert reply == "Return of A1B2C3 because changed my mind."


async def test_a_free_text_answer_that_reads_like_another_request_is_the_answer(
    tmp_path: Path,
) -> None:
    chat = await at_the_reason(tmp_path)
    reply = texts(await chat.say("where is the rest of my order, half of it came", "order_status"))
    assert reply == "Return of A1B2C3 because where is the rest of my order, half of it came."


async def test_a_stop_or_a_person_leaves_a_free_text_question(tmp_path: Path) -> None:
    for text, intent in (
        ("nah forget it", "cancel"),
        ("cancel", "cancel"),
        ("stop this please", "cancel"),
        ("never mind, it's fine", "cancel"),
    ):
        chat = await at_the_reason(tmp_path)
        assert texts(await chat.say(text, intent, 0.9)) == "Okay, stopped.", text
        assert chat.flow is None
    # The model unsure between no and cancel: a stop is still a stop.
    chat = await at_the_reason(tmp_path)
    ranking = (("deny", 0.55), ("cancel", 0.45))
    reply = texts(await chat.say("nah forget it", "deny", 0.55, ranking))
    assert "because" not in reply and chat.flow is None
    chat = await at_the_reason(tmp_path)
    await chat.say("can i talk to someone real", "human", 0.9)
    assert chat.session.handoff
    chat = await at_the_reason(tmp_path)
    assert texts(await chat.say("help", "help", 0.9)).startswith("I can help.")
