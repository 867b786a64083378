"""Hot reload: a good edit is taken, a broken edit is refused and the running flows stay."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from core.errors import FlowError, StartupError
from gateway import dialogue_loader
from gateway.dialogue_loader import DialogueBundle, load_dialogue
from tests.support.flows_nlu import FLOWS


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(FLOWS, target)
    return target


def bundle(flows: Path, **kw: object) -> DialogueBundle:
    return load_dialogue(load_settings(flows_dir=flows, data_dir=flows.parent, **kw))


def edit(flows: Path, old: str, new: str) -> None:
    path = flows / "support.yml"
    path.write_text(path.read_text().replace(old, new, 1))


async def test_bundle_gives_runner_extractor_and_intents(flows: Path) -> None:
    b = bundle(flows, confidence_threshold=0.42)
    assert "order_status" in b.intents and "out_of_scope" not in b.intents
    assert [e.value for e in b.extractor.extract("a1b2c3")] == ["A1B2C3"]
    assert b.dialogue._threshold == 0.42
    assert load_dialogue(load_settings(flows_dir=flows), threshold=0.7).dialogue._threshold == 0.7
    b.dialogue.use_threshold(lambda: 0.55)
    assert b.dialogue._limits(b.dialogue.bot)[0] == 0.55


async def test_broken_flows_stop_the_start_with_file_and_line(flows: Path) -> None:
    edit(flows, "- call: shop.order_status", "- call: shop.order_statuz")
    with pytest.raises(StartupError) as caught:
        bundle(flows)
    assert "support.yml:" in str(caught.value) and "undefined action" in str(caught.value)
    assert isinstance(caught.value.__cause__, FlowError)


async def test_reload_takes_a_good_edit_and_refuses_a_broken_one(flows: Path) -> None:
    b = bundle(flows)
    edit(flows, "Standard delivery takes 2-4", "Standard delivery takes 3-5")
    assert b.reload() == []
    say = b.dialogue.bot.flows["delivery_times"].program[0]
    assert "3-5" in say.texts[0].source  # type: ignore[union-attr]
    edit(flows, "      - retry: order_id", "      - retry: order_number")
    problems = b.reload()
    assert problems and all("support.yml:" in p for p in problems)
    assert "undefined slot 'order_number'" in problems[0]
    assert "3-5" in b.dialogue.bot.flows["delivery_times"].program[0].texts[0].source  # type: ignore[union-attr]


async def test_sighup_and_the_watcher_reload(flows: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = bundle(flows, flows_watch=True)
    await b.start()
    try:
        edit(flows, "Standard shipping costs $4.95", "Standard shipping costs $5.95")
        loaded_in: list[str] = []
        real_load = dialogue_loader.load_bot

        def load_bot(*args: Any) -> Any:
            loaded_in.append(threading.current_thread().name)
            return real_load(*args)

        monkeypatch.setattr(dialogue_loader, "load_bot", load_bot)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(40):
            await asyncio.sleep(0.05)
            text = b.dialogue.bot.flows["shipping_costs"].program[0].texts[0].source  # type: ignore[union-attr]
            if "$5.95" in text:
                break
        assert "$5.95" in text
        # Read and compiled off the event loop: a reload must not stall webhooks and turns.
        assert loaded_in and threading.main_thread().name not in loaded_in
        await asyncio.sleep(0.05)
        edit(flows, "$5.95", "$6.95")
        for _ in range(40):
            await asyncio.sleep(0.1)
            text = b.dialogue.bot.flows["shipping_costs"].program[0].texts[0].source  # type: ignore[union-attr]
            if "$6.95" in text:
                break
        assert "$6.95" in text
    finally:
        await b.stop()


async def test_a_waiting_conversation_survives_a_reload_that_moves_its_question(
    flows: Path,
) -> None:
    from tests.core.dialogue.helpers import Chat

    b = bundle(flows)
    chat = Chat(b.dialogue)
    await chat.say("where is my order", "order_status")
    step = chat.session.stack[-1].step
    edit(
        flows,
        "    steps:\n      - ask: [\"What's your order number?",
        "    steps:\n      - say: Let's look.\n      - ask: [\"What's your order number?",
    )
    assert b.reload() == []
    assert type(b.dialogue.bot.flows["order_status"].program[0]).__name__ == "Say"
    reply = "\n".join(r.text for r in await chat.say("A1B2C3", "order_status", 0.3))
    assert "shipped" in reply
    assert chat.session.stack == [] and step == 0
