"""The story runner over the real pipeline (queue, engine, flows), here with the example-matching
test double as intent model; `python -m gateway test` runs the same with the trained model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from config.settings import load_settings
from core.ports import Dialogue
from gateway.dialogue_loader import load_dialogue
from gateway.stories import run_stories
from integrations.shop import Shop
from tests.support.flows_nlu import FLOWS, ExampleNlu

STORIES = Path(__file__).resolve().parents[2] / "stories"


def example_brain(tmp_path: Path) -> tuple[ExampleNlu, Dialogue]:
    """The flows with the example-matching test double instead of the trained model."""
    bundle = load_dialogue(load_settings(flows_dir=FLOWS, data_dir=tmp_path))
    return ExampleNlu.from_dir(FLOWS, bundle.extractor), bundle.dialogue


async def test_every_shipped_story_passes(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    report = await run_stories(STORIES, *example_brain(tmp_path), settings)
    assert report.passed, report.format()
    assert len(report.results) >= 20


async def test_a_failing_story_names_file_line_and_difference(tmp_path: Path) -> None:
    (tmp_path / "s.yml").write_text(
        textwrap.dedent(
            """\
            stories:
              - name: wrong expectation
                steps:
                  - user: where is my order
                    bot: [order number]
                  - user: A1B2C3
                    bot: [delivered]
                    flow: order_status
              - name: pressing a button that was not offered
                steps:
                  - press: Nope
            """
        )
    )
    report = await run_stories(tmp_path, *example_brain(tmp_path), load_settings(data_dir=tmp_path))
    assert not report.passed
    first, second = report.results
    assert first.where == f"{tmp_path}/s.yml:2"
    assert first.failures[0].startswith(f"{tmp_path}/s.yml:6: expected the reply to contain")
    assert "expected flow 'order_status', is None" in first.failures[1]
    assert "no button 'Nope' offered" in second.failures[0]
    assert "0/2 stories passed" in report.format()


@pytest.mark.slow
async def test_every_shipped_story_passes_with_a_trained_model(
    tmp_path: Path, trained_model_dir: Path
) -> None:
    from core.nlu.parser import ModelParser

    settings = load_settings(flows_dir=FLOWS, data_dir=tmp_path)
    bundle = load_dialogue(settings)
    parser = ModelParser(trained_model_dir, extract=bundle.extractor.extract)
    await parser.start()
    bundle.dialogue.use_threshold(lambda: parser.threshold)
    try:
        report = await run_stories(STORIES, parser, bundle.dialogue, settings)
    finally:
        await parser.close()
    assert report.passed, report.format()


async def test_one_story_file_can_be_played_alone(tmp_path: Path) -> None:
    story = tmp_path / "one.yml"
    story.write_text("stories:\n  - name: hi\n    steps:\n      - user: hello\n")
    report = await run_stories(story, *example_brain(tmp_path), load_settings(data_dir=tmp_path))
    assert [r.name for r in report.results] == ["hi"], report.format()


async def test_the_benchmark_scores_every_turn_and_counts_a_silent_turn_as_a_miss(
    tmp_path: Path,
) -> None:
    (tmp_path / "b.yml").write_text(
        textwrap.dedent(
            """\
            stories:
              - name: a miss does not stop the conversation
                steps:
                  - user: where is my order
                    bot: [nothing like this]
                  - user: A1B2C3
                    bot_any: [shipped, delivered]
                    not_buttons: [Goodbye]
              - name: any of
                steps:
                  - user: what are your opening hours
                    bot_any: [no such words, neither]
            """
        )
    )
    nlu, dialogue = example_brain(tmp_path)
    settings = load_settings(data_dir=tmp_path)
    report = await run_stories(tmp_path, nlu, dialogue, settings, score=True)
    first, second = report.results
    assert (first.turns, first.failed_turns) == (2, 1)
    assert (second.turns, second.failed_turns) == (1, 1)
    assert "expected the reply to contain one of ['no such words', 'neither']" in second.failures[0]
    assert report.share == pytest.approx(1 / 3)
    assert "1/3 turns handled well (33.3%)" in report.format_score()


async def test_a_customer_typing_a_bare_yes_sends_the_word_not_a_yaml_boolean(
    tmp_path: Path,
) -> None:
    # YAML reads an unquoted yes as True: the customer's "yes" reached the bot as "True".
    (tmp_path / "y.yml").write_text(
        textwrap.dedent(
            """\
            stories:
              - name: confirming with a bare yes
                steps:
                  - user: i want to cancel my order Z9Y8X7
                    bot: [Shall I cancel it]
                  - user: yes
                    bot: [is cancelled]
                    slots: {confirm: true}
            """
        )
    )
    report = await run_stories(tmp_path, *example_brain(tmp_path), load_settings(data_dir=tmp_path))
    assert report.passed, report.format()


async def test_each_story_meets_the_shop_as_it_was_made(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text(
        textwrap.dedent(
            """\
            stories:
              - name: cancelling an order
                steps:
                  - user: i want to cancel my order Z9Y8X7
                  - user: yes
                    bot: [is cancelled]
              - name: the same order in another conversation has not been cancelled
                steps:
                  - user: where is my order Z9Y8X7
                    bot: [processing]
            """
        )
    )
    shop = Shop()
    settings = load_settings(flows_dir=FLOWS, data_dir=tmp_path)
    bundle = load_dialogue(settings, shop=shop)
    nlu = ExampleNlu.from_dir(FLOWS, bundle.extractor)
    report = await run_stories(tmp_path, nlu, bundle.dialogue, settings, shop=shop)
    assert report.passed, report.format()
    assert shop.orders["Z9Y8X7"].status == "processing" and not shop.tickets
