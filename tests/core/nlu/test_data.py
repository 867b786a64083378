"""Loading intent examples: markup stripped, heldout/ skipped, mistakes named by file."""

from pathlib import Path

import pytest

from core.errors import NluDataError
from core.nlu.data import (
    OUT_OF_SCOPE,
    Example,
    data_hash,
    load_data,
    load_file,
    load_flows_dir,
    strip_markup,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"


def test_markup_is_stripped() -> None:
    assert strip_markup("where is order [A1B2C3](order_id) now") == "where is order A1B2C3 now"
    assert strip_markup("no markup [here]") == "no markup [here]"


def test_flows_dir_reads_every_yaml_but_heldout(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("intents:\n  greet:\n    examples: [hi, hello]\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text(
        "flows: {}\nintents:\n  bye:\n    examples: ['see [you](who)']\n"
    )
    (tmp_path / "heldout").mkdir()
    (tmp_path / "heldout" / "intents.yml").write_text("intents:\n  greet:\n    examples: [yo]\n")
    (tmp_path / "flows-only.yml").write_text("flows: {}\n")
    got = load_flows_dir(tmp_path)
    assert sorted(got, key=lambda e: e.text) == [
        Example("hello", "greet"),
        Example("hi", "greet"),
        Example("see you", "bye"),
    ]


def test_fixture_data_has_out_of_scope() -> None:
    got = load_data(FIXTURES)
    assert {e.intent for e in got} >= {"greet", "order_status", OUT_OF_SCOPE}
    assert all("](" not in e.text for e in got)


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("intents:\n  greet:\n    examples: [hi\n")
    with pytest.raises(NluDataError, match=r"bad\.yml:\d+: not valid YAML"):
        load_file(bad)


def test_examples_must_be_a_list(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("intents:\n  greet:\n    examples: 3\n")
    with pytest.raises(NluDataError, match=r"bad\.yml: intent 'greet' needs"):
        load_file(bad)


def test_missing_dir_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(NluDataError, match="no such flows directory"):
        load_flows_dir(tmp_path / "nope")
    with pytest.raises(NluDataError, match="no `intents:` examples"):
        load_flows_dir(tmp_path)


def test_data_hash_ignores_order_but_not_content() -> None:
    a = [Example("hi", "greet"), Example("bye", "goodbye")]
    assert data_hash(a) == data_hash(a[::-1])
    assert data_hash(a) != data_hash([Example("hi", "greet"), Example("bye", "greet")])


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yml"
    bad.write_bytes("intents:\n  a:\n    examples: [café olé]\n".encode("latin-1"))
    with pytest.raises(NluDataError, match=r"latin1\.yml:3: not UTF-8 text"):
        load_file(bad)
