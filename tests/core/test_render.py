"""core/render: text split at natural boundaries, never mid-word; buttons fitted to a channel."""

from __future__ import annotations

import pytest

from core.models import Button, Capabilities
from core.render import PayloadKeys, fit_buttons, numbered_options, shorten, split_text


def test_short_text_is_one_part_and_empty_text_none():
    assert split_text("  hello  ", 10) == ["hello"]
    assert split_text("   ", 10) == []


def test_paragraphs_come_before_lines_before_sentences_before_words():
    text = "First para line one.\nline two\n\nSecond paragraph here."
    assert split_text(text, 40) == ["First para line one.\nline two", "Second paragraph here."]
    assert split_text("One two three. Four five six. Seven", 30) == [
        "One two three. Four five six.",
        "Seven",
    ]
    assert split_text("alpha beta gamma delta", 11) == ["alpha beta", "gamma delta"]


@pytest.mark.parametrize("limit", [7, 17, 64, 100])
def test_no_word_is_cut_and_nothing_is_lost(limit: int):
    words = [f"word{i}" for i in range(300)]
    parts = split_text(" ".join(words), limit)
    assert all(len(p) <= limit for p in parts)
    assert " ".join(parts).split() == words


def test_a_word_longer_than_the_limit_is_the_only_thing_cut():
    url = "https://example.test/" + "a" * 30
    parts = split_text(f"see {url} now", 20)
    assert all(len(p) <= 20 for p in parts)
    assert "".join(parts).replace(" ", "") == f"see{url}now"


def test_labels_are_shortened_with_an_ellipsis_at_a_space():
    assert shorten("Talk to a person please", 12) == "Talk to a…"
    assert shorten("short", 12) == "short"
    assert len(shorten("x" * 100, 10)) == 10


def test_numbered_options_and_overflow_keep_the_full_list_numbering():
    buttons = [Button(label=f"B{i}", payload=f"/b{i}") for i in range(1, 5)]
    assert numbered_options(buttons[:2]) == "1. B1\n2. B2"
    native, text = fit_buttons(buttons, Capabilities(max_buttons=3))
    assert [b.payload for b in native] == ["/b1", "/b2", "/b3"] and text == "4. B4"
    native, text = fit_buttons(buttons, Capabilities(buttons="numbered"))
    assert native == [] and text.splitlines()[-1] == "4. B4"


def test_payload_keys_are_short_deterministic_and_known_only_where_issued():
    keys = PayloadKeys()
    long = "/x" + "y" * 200
    key = keys.encode(long, 64)
    assert len(key.encode()) <= 64 and key == PayloadKeys().encode(long, 64)
    assert keys.decode(key) == long
    assert PayloadKeys().decode(key) is None
    assert keys.encode("/short", 64) == "/short" and keys.decode("/short") == "/short"
