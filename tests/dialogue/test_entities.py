"""Entity extraction: built-ins backed by phonenumbers and dateparser, and regex ids."""

from __future__ import annotations

from datetime import datetime

from core.entities import EntityExtractor, RegexEntity

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
    for e in EntityExtractor([ORDER]).extract(text):
        assert text[e.start : e.end] == e.text
    assert EntityExtractor().extract("   ") == ()


def test_update_swaps_the_regex_ids() -> None:
    ex = EntityExtractor([ORDER])
    ex.update([RegexEntity("ticket", r"RF-\d{4}")])
    assert [(e.type, e.value) for e in ex.extract("RF-0001 A1B2C3")] == [("ticket", "RF-0001")]
