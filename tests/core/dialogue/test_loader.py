"""The loader refuses each kind of mistake with file:line: reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core.dialogue import load_bot
from core.dialogue.model import Ask, Call
from core.errors import FlowError
from tests.support.flows_nlu import FLOWS

INTENTS = textwrap.dedent(
    """\
    intents:
      greet: {examples: [hi]}
      order_status: {examples: [where is my order]}
      affirm: {examples: ["yes"]}
    """
)


def write(tmp_path: Path, flows: str) -> Path:
    (tmp_path / "intents.yml").write_text(INTENTS)
    (tmp_path / "bot.yml").write_text(textwrap.dedent(flows))
    return tmp_path


def issues(tmp_path: Path, flows: str, actions: set[str] | None = None) -> list[str]:
    directory = write(tmp_path, flows)
    with pytest.raises(FlowError) as caught:
        load_bot(directory, actions if actions is not None else {"orders.lookup"})
    return [str(i) for i in caught.value.issues]


def test_the_default_bot_loads(tmp_path: Path) -> None:
    from config.settings import load_settings
    from gateway.dialogue_loader import build_registry

    bot = load_bot(FLOWS, build_registry(load_settings()).names())
    assert {"order_status", "refund", "password_reset", "human"} <= set(bot.flows)
    assert bot.triggers["order_status"] == "order_status"
    assert "heldout" not in " ".join(bot.files)


def test_unknown_step_kind(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps:
              - say: hi
              - sya: oops
        """,
    )
    assert found == [f"{tmp_path}/bot.yml:6: unknown step kind 'sya'"]


def test_jump_to_unknown_step(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps:
              - say: hi
              - jump: nowhere
        """,
    )
    assert found == [f"{tmp_path}/bot.yml:6: unknown step 'nowhere' in flow 'hello'"]


def test_undefined_intent_in_when_and_in_a_button(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greeting}
            steps:
              - say: hi
                buttons:
                  - {label: Track, intent: track}
        """,
    )
    assert f"{tmp_path}/bot.yml:3: undefined intent 'greeting'" in found
    assert f"{tmp_path}/bot.yml:7: undefined intent 'track'" in found


def test_undefined_slot_in_ask_and_in_a_template(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            slots:
              name: {}
            steps:
              - ask: "Your order?"
                slot: order_id
              - say: "Hi {{ slots.nam }}"
        """,
    )
    assert found == [
        f"{tmp_path}/bot.yml:8: undefined slot 'order_id' in flow 'hello'",
        f"{tmp_path}/bot.yml:9: undefined slot 'nam' in flow 'hello'",
    ]


def test_undefined_action(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps:
              - call: orders.lookpu
                as: order
        """,
    )
    assert found == [f"{tmp_path}/bot.yml:5: undefined action 'orders.lookpu'"]


def test_yaml_declared_http_action_counts_as_defined(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        actions:
          weather.now:
            url: "https://api.example/{{ city }}"
        flows:
          hello:
            when: {intent: greet}
            steps:
              - call: weather.now
                with: {city: Paris}
        """,
    )
    bot = load_bot(tmp_path, set())
    assert "weather.now" in bot.actions
    assert isinstance(bot.flows["hello"].program[0], Call)


def test_template_that_does_not_compile(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps:
              - say:
                  - "fine"
                  - "Hi {{ user "
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path}/bot.yml:7: template does not compile:")


def test_condition_that_does_not_compile(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps:
              - if: "order.status =="
                then: [{say: yes}]
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path}/bot.yml:5: condition does not compile:")


def test_when_claimed_by_two_flows(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps: [{say: hi}]
          hello_again:
            when: {intent: greet}
            steps: [{say: hi again}]
        """,
    )
    assert found == [
        f"{tmp_path}/bot.yml:5: when intent 'greet' is already claimed by flow 'hello' "
        f"({tmp_path}/bot.yml:2)"
    ]


def test_unreachable_step(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps:
              - say: hi
              - end: flow
              - say: never said
        """,
    )
    assert found == [f"{tmp_path}/bot.yml:7: unreachable step in flow 'hello'"]


def test_a_step_after_an_end_is_reachable_when_jumped_to(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            steps:
              - jump: later
              - id: later
                say: reached
        """,
    )
    assert load_bot(tmp_path, set()).flows["hello"]


def test_undefined_flow_and_entity_and_yaml_syntax(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            slots:
              code: {entity: coupon}
            steps:
              - ask: Code?
                slot: code
              - goto: elsewhere
        """,
    )
    assert f"{tmp_path}/bot.yml:5: undefined entity 'coupon'" in found
    assert f"{tmp_path}/bot.yml:9: undefined flow 'elsewhere'" in found
    (tmp_path / "bot.yml").write_text("flows:\n  hello: [unclosed\n")
    with pytest.raises(FlowError) as caught:
        load_bot(tmp_path)
    assert str(caught.value.issues[0]).startswith(f"{tmp_path}/bot.yml:3: YAML syntax")


def test_every_mistake_is_listed_and_programs_are_flat(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        flows:
          hello:
            when: {intent: greet}
            bogus: 1
            steps:
              - say: hi
                colour: red
        """,
    )
    assert found == [
        f"{tmp_path}/bot.yml:4: unknown key 'bogus' in flow",
        f"{tmp_path}/bot.yml:6: unknown key 'colour' in a say step",
    ]
    bot = load_bot(FLOWS, None)
    program = bot.flows["order_status"].program
    assert isinstance(program[0], Ask) and program[0].slot == "order_id"


def test_the_edit_rule_is_read_and_a_wrong_one_refused_with_its_line(tmp_path: Path) -> None:
    from core.desk import DeskDialogue
    from core.ports import EditRule
    from tests.core.dialogue.helpers import make_runner

    flows = """\
    policy:
      below: 0.5
      edits: {rule}
    flows:
      hello: {{when: {{intent: greet}}, steps: [{{say: hi}}]}}
    """
    assert load_bot(FLOWS, None).policy.edits == "replace_unanswered"  # the shipped bot
    runner, _, _ = make_runner(tmp_path, flows.format(rule="as_new"))
    assert runner.edits == "as_new" and isinstance(runner, EditRule)
    # The support desk wraps the runner: the turn still reaches the rule through it (only its
    # delegation is used here, so the desk's stores are left out).
    wrapped = DeskDialogue.__new__(DeskDialogue)
    wrapped._inner = runner
    assert isinstance(wrapped, EditRule) and wrapped.edits == "as_new"
    found = issues(tmp_path, flows.format(rule="answer_twice"))
    assert found == [
        f"{tmp_path}/bot.yml:3: edits: expected one of as_new, ignore, replace_unanswered"
    ]
