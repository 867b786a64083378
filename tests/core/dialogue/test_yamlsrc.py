"""YAML read with lines kept, and scalars as they were written."""

from __future__ import annotations

from core.dialogue.yamlsrc import LDict, load_text


def test_a_scalar_is_read_back_as_it_was_written() -> None:
    doc = load_text("a: yes\nb: 007\nc: 'no'\nd:\ne: ~\nf: plain text\n")
    assert isinstance(doc, LDict)
    assert doc["a"] is True  # YAML's own reading stays as it was
    assert [doc.text_of(k) for k in "abcdef"] == ["yes", "007", "no", "", "", "plain text"]
    assert doc.line_of("f") == 6


def test_a_mapping_made_in_code_reads_its_values_as_text() -> None:
    made = LDict(user=True, n=None)
    assert made.text_of("user") == "True"
    assert made.text_of("n") == ""
    assert made.text_of("missing") == ""
