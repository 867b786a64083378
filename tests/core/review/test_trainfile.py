"""The reviewed examples file: written and read back, one entry per turn, refused with file:line
when broken, read by the training data loader and checked by the flow loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.dialogue import load_bot
from core.errors import FlowError, NluDataError
from core.nlu.data import Example, load_flows_dir
from core.review import trainfile
from core.review.trainfile import Entry


def entry(turn: int, intent: str, text: str, label: str = "relabel") -> Entry:
    return Entry(intent, text, label, "ann", "2026-12-06T23:10:00Z", turn, "greet")


def test_written_read_back_and_replaced_per_turn(flows_copy: Path, tmp_path: Path) -> None:
    path, lock = flows_copy / trainfile.FILE_NAME, tmp_path / "lock"
    trainfile.save(path, lock, entry(1, "order_status", "where's my parcel: it's late"))
    trainfile.save(path, lock, entry(2, "human", "get me someone #now"))
    trainfile.save(path, lock, entry(1, "refund", "where's my parcel: it's late"))
    assert trainfile.read(path) == [
        entry(2, "human", "get me someone #now"),
        entry(1, "refund", "where's my parcel: it's late"),
    ]
    text = path.read_text()
    assert text.startswith("# Examples labelled in the console's review inbox")
    assert "by: ann" in text and "label: relabel" in text
    trainfile.drop(path, lock, 2)
    assert [e.turn for e in trainfile.read(path)] == [1]

    # Training reads it with the other flow files; the flow loader accepts it.
    examples = load_flows_dir(flows_copy)
    assert Example("where's my parcel: it's late", "refund") in examples
    bot = load_bot(flows_copy)
    assert str(path) in bot.files and "refund" in bot.intents


def test_a_hand_added_plain_example_is_kept(flows_copy: Path, tmp_path: Path) -> None:
    path = flows_copy / trainfile.FILE_NAME
    path.write_text("intents:\n  greet:\n    examples:\n      - howdy partner\n")
    trainfile.save(path, tmp_path / "lock", entry(3, "greet", "yo yo"))
    assert trainfile.read(path) == [Entry("greet", "howdy partner"), entry(3, "greet", "yo yo")]


BROKEN = """\
intents:
  order_status:
    examples:
      - text: where is it
        label: relabel
        by: ann
        at: '2026-12-06T23:10:00Z'
      - text: fine one
        label: guess
        by: ann
        at: '2026-12-06T23:10:00Z'
"""


def test_a_broken_label_is_refused_with_file_and_line(flows_copy: Path, tmp_path: Path) -> None:
    path = flows_copy / trainfile.FILE_NAME
    path.write_text(BROKEN)
    with pytest.raises(NluDataError, match=rf"{path}:9: `label:` must be one of"):
        load_flows_dir(flows_copy)
    with pytest.raises(FlowError) as caught:
        load_bot(flows_copy)
    assert f"{path}:9" in str(caught.value) and "label" in str(caught.value)
    with pytest.raises(NluDataError, match=rf"{path}:9"):
        trainfile.save(path, tmp_path / "lock", entry(1, "greet", "hi"))
    assert path.read_text() == BROKEN  # never written over a mistake

    path.write_text(BROKEN.replace("guess", "right").replace("by: ann\n        at", "at", 1))
    with pytest.raises(NluDataError, match=rf"{path}:4: `by:` must name who"):
        load_flows_dir(flows_copy)


def test_labels_never_define_an_intent(flows_copy: Path, tmp_path: Path) -> None:
    path = flows_copy / trainfile.FILE_NAME
    trainfile.save(path, tmp_path / "lock", entry(1, "no_such_intent", "hello"))
    with pytest.raises(FlowError, match="undefined intent 'no_such_intent'"):
        load_bot(flows_copy)
