"""Entity extraction: built-ins backed by phonenumbers and dateparser, and regex ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.entities import EntityExtractor, RegexEntity
from core.entities.extractor import MAX_FINDS

ORDER = RegexEntity("order_id", r"(?i)\b(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{6}\b", "upper")


def found(text: str) -> list[tuple[str, object]]:
    return [(e.type, e.value) for e in EntityExtractor([ORDER]).extract(text)]


def test_regex_ids_are_normalised_and_words_are_not_ids() -> None:
    assert found("where is a1b2c3 please") == [("order_id", "A1B2C3")]
    assert found("thanks orders") == []


def test_email_and_phone() -> None:
    assert found("I'm Bob@Example.COM, call +44 20 7946 0958") == [
        ("email", "bob@example.com"),
        ("phone", "+442079460958"),
    ]
    assert found("call me at (415) 555-2671") == [("phone", "+14155552671")]


def test_amounts_and_numbers() -> None:
    assert found("it cost $12.50 and 30 euros for 3 items") == [
        ("amount", {"value": 12.5, "currency": "USD"}),
        ("amount", {"value": 30.0, "currency": "EUR"}),
        ("number", 3),
    ]
    assert found("1,299.99 dollars") == [("amount", {"value": 1299.99, "currency": "USD"})]


def test_date_words() -> None:
    ents = EntityExtractor().extract("can it come tomorrow at 5pm")
    assert [e.type for e in ents] == ["date"]
    assert ents[0].text == "tomorrow at 5pm"
    assert datetime.fromisoformat(ents[0].value).hour == 17


def test_spans_point_into_the_text_and_empty_text_has_none() -> None:
    text = "order Z9Y8X7 to bob@example.com"
    ents = EntityExtractor([ORDER]).extract(text)
    # Both found, or the span check below would pass over nothing.
    assert [e.type for e in ents] == ["order_id", "email"]
    for e in ents:
        assert text[e.start : e.end] == e.text
    assert EntityExtractor().extract("   ") == ()


def test_update_swaps_the_regex_ids() -> None:
    ex = EntityExtractor([ORDER])
    ex.update([RegexEntity("ticket", r"RF-\d{4}")])
    assert [(e.type, e.value) for e in ex.extract("RF-0001 A1B2C3")] == [("ticket", "RF-0001")]


# -- bounded on hostile text (tests/test_linear_text.py times every shape) -----------------------


def test_addresses_are_found_from_the_at_within_the_lengths_mail_allows() -> None:
    local, label = "a" * 64, "b" * 60
    assert found(f"mail {local}@x.io please") == [("email", f"{local}@x.io")]
    assert found(f"mail a{local}@x.io") == []  # a 65-character local part
    assert found(f"to a@{'.'.join([label] * 5)}.io") == []  # a domain over 253 characters
    assert found("a@b@c.io, x@y.io") == [("email", "b@c.io"), ("email", "x@y.io")]


def test_only_the_text_the_model_reads_is_searched() -> None:
    text = "x " * 256 + "bob@example.com"
    assert EntityExtractor(max_chars=512).extract(text) == ()
    assert [e.type for e in EntityExtractor(max_chars=1024).extract(text)] == ["email"]


def test_each_finder_stops_after_max_finds() -> None:
    numbers = EntityExtractor().extract(" ".join(["7"] * 200))
    assert len(numbers) == MAX_FINDS


def test_amounts_in_long_digit_runs_start_where_the_number_starts() -> None:
    assert found("1,000,000 usd") == [("amount", {"value": 1000000.0, "currency": "USD"})]
    assert found("ref 12345678901234567890 $") == [
        ("amount", {"value": 12345678901234567890.0, "currency": "USD"})
    ]


def test_dateparser_reads_short_windows_around_date_words(monkeypatch: Any) -> None:
    import dateparser.search

    read: list[str] = []
    search = dateparser.search.search_dates

    def recording(text: str, *args: Any, **kwargs: Any) -> Any:
        read.append(text)
        return search(text, *args, **kwargs)

    monkeypatch.setattr(dateparser.search, "search_dates", recording)
    ents = EntityExtractor().extract("mon 1 " * 85)
    assert len(read) <= 2 and all(len(t) <= 64 for t in read)
    assert all(e.type in ("date", "number") for e in ents)
    read.clear()
    (date,) = EntityExtractor().extract("blah " * 50 + "please come next friday at 5pm")
    assert date.text == "next friday at 5pm" and read == ["please come next friday at 5pm"]
