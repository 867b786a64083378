""" "Did that help?": asked after the flows the policy names, at most every `feedback_every`,
and the 👍/👎 press carried to the turn it is about."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import FlowError
from core.outcomes import ASKED_FEEDBACK_KEY, FEEDBACK_KEY
from tests.core.dialogue.helpers import Chat, make_runner, texts

BOT = """\
policy:
  feedback:
    after: [orders]
    ask: "Did that help?"
    thanks: "Thanks!"
flows:
  orders:
    when: {intent: order_status}
    steps:
      - say: "Your order is on its way."
  greet:
    when: {intent: greet}
    steps:
      - say: "Hi!"
"""


class Asked:
    """The conversation store's memory of questions asked, as the runner sees it."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.seen: list[tuple[str, float]] = []

    async def asked_since(self, conversation_key: str, since: float) -> bool:
        self.seen.append((conversation_key, since))
        return self.answer


async def test_asked_after_a_named_flow_and_the_press_names_the_turn(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    assert texts(await chat.say("hi", "greet")) == "Hi!"  # not a flow the policy names
    replies = await chat.say("where is my order", "order_status")
    assert texts(replies) == "Your order is on its way.\nDid that help?"
    assert [(b.label, b.payload) for b in replies[-1].buttons] == [
        ("👍 Yes", "/feedback:up"),
        ("👎 No", "/feedback:down"),
    ]
    assert chat.last is not None and chat.last.extra[ASKED_FEEDBACK_KEY] is True
    assert texts(await chat.say(payload="/feedback:down")) == "Thanks!"
    assert chat.last is not None and chat.last.extra[FEEDBACK_KEY] == ("down", "test:2")
    # A second press (a double tap, an old message's button) is thanked, not kept again.
    await chat.say(payload="/feedback:up")
    assert chat.last is not None and FEEDBACK_KEY not in chat.last.extra


async def test_asked_at_most_every_feedback_every(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT)
    chat = Chat(runner)
    assert "Did that help?" in texts(await chat.say("where is my order", "order_status"))
    assert "Did that help?" not in texts(await chat.say("where is my order", "order_status"))
    every, _, _ = make_runner(tmp_path, BOT, feedback_every=0)
    chat = Chat(every)
    for _ in range(2):
        assert "Did that help?" in texts(await chat.say("where is my order", "order_status"))
    off, _, _ = make_runner(tmp_path, BOT, feedback_every=None)
    assert "Did that help?" not in texts(await Chat(off).say("where is it", "order_status"))


async def test_the_store_remembers_past_the_session(tmp_path: Path) -> None:
    runner, _, _ = make_runner(tmp_path, BOT, feedback_every=3600)
    asked = Asked(answer=True)
    runner.use_feedback_log(asked)
    chat = Chat(runner)
    assert "Did that help?" not in texts(await chat.say("where is my order", "order_status"))
    assert asked.seen and asked.seen[0][0] == chat.session.key
    asked.answer = False
    assert "Did that help?" in texts(await chat.say("where is my order", "order_status"))


def test_a_feedback_policy_naming_an_unknown_flow_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=r"bot\.yml:3: undefined flow 'nope'"):
        make_runner(tmp_path, BOT.replace("after: [orders]", "after: [orders, nope]"))
