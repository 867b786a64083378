"""Built-in extractors backed by kept libraries (phonenumbers, dateparser), plus the regex ids the
flows define; overlapping finds go to the more specific extractor."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import phonenumbers

from core.turn import Entity

BUILTIN_ENTITIES = frozenset({"email", "phone", "number", "amount", "date"})

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "usd": "USD", "eur": "EUR", "gbp": "GBP",
             "euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD",
             "pound": "GBP", "pounds": "GBP", "bucks": "USD"}  # fmt: skip
_NUM = r"\d{1,3}(?:[,.]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT = re.compile(
    rf"(?P<pre>[$€£])\s?(?P<n1>{_NUM})"
    rf"|(?P<n2>{_NUM})\s?(?P<post>[$€£]|(?i:usd|eur|gbp|euros?|dollars?|pounds?|bucks)\b)"
)
_NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:[.,]\d+)?(?![\w])")
_DATEISH = re.compile(
    r"(?i)\b(?:today|tomorrow|yesterday|tonight|now|noon|midnight|next|last|ago|mon(?:day)?|"
    r"tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)"
    r"\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
    r"\s+\d|\b\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?\b|\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b"
)


@dataclass(frozen=True, slots=True)
class RegexEntity:
    """An id defined in the flows, e.g. order_id: `[A-Z0-9]{6}` (group 0 is the value)."""

    name: str
    pattern: str
    case: Literal["upper", "lower", "keep"] = "keep"


def _to_float(text: str) -> float:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?", text):
        text = text.replace(".", "").replace(",", ".")
    return float(text.replace(",", "."))


def _number_value(text: str) -> int | float:
    value = _to_float(text)
    return int(value) if value.is_integer() and not re.search(r"[.,]\d{1,2}$", text) else value


class EntityExtractor:
    """`extract(text)` → entities in text order. Build one per loaded flows (their regex ids) and
    share it: it keeps no state between calls."""

    def __init__(self, regexes: Iterable[RegexEntity] = (), region: str = "US"):
        self._regexes = [(r, re.compile(r.pattern)) for r in regexes]
        self._region = region
        self._finders: list[Callable[[str], Iterator[Entity]]] = [
            self._custom,
            self._email,
            self._phone,
            self._amount,
            self._date,
            self._number,
        ]

    def update(self, regexes: Iterable[RegexEntity]) -> None:
        """Swap in the regex ids of reloaded flows; callers holding this extractor see them."""
        self._regexes = [(r, re.compile(r.pattern)) for r in regexes]

    def extract(self, text: str) -> tuple[Entity, ...]:
        if not text or not text.strip():
            return ()
        taken: list[tuple[int, int]] = []
        found: list[Entity] = []
        for finder in self._finders:
            for ent in finder(text):
                if any(ent.start < end and start < ent.end for start, end in taken):
                    continue
                taken.append((ent.start, ent.end))
                found.append(ent)
        return tuple(sorted(found, key=lambda e: e.start))

    def _custom(self, text: str) -> Iterator[Entity]:
        for spec, rx in self._regexes:
            for m in rx.finditer(text):
                raw = m.group(0)
                value = raw.upper() if spec.case == "upper" else raw
                value = raw.lower() if spec.case == "lower" else value
                yield Entity(spec.name, value, raw, m.start(), m.end())

    def _email(self, text: str) -> Iterator[Entity]:
        for m in _EMAIL.finditer(text):
            yield Entity("email", m.group(0).lower(), m.group(0), m.start(), m.end())

    def _phone(self, text: str) -> Iterator[Entity]:
        for m in phonenumbers.PhoneNumberMatcher(text, self._region):
            value = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            yield Entity("phone", value, m.raw_string, m.start, m.end)

    def _amount(self, text: str) -> Iterator[Entity]:
        for m in _AMOUNT.finditer(text):
            number = m.group("n1") or m.group("n2")
            currency = _CURRENCY[(m.group("pre") or m.group("post")).lower()]
            value: dict[str, Any] = {"value": _to_float(number), "currency": currency}
            yield Entity("amount", value, m.group(0), m.start(), m.end())

    def _date(self, text: str) -> Iterator[Entity]:
        if not _DATEISH.search(text):
            return
        from dateparser.search import search_dates  # slow import, only when needed

        found = search_dates(text, languages=["en"], settings={"PREFER_DATES_FROM": "future"}) or []
        at = 0
        for raw, when in found:
            start = text.find(raw, at)
            if start < 0 or not _DATEISH.search(raw) or not isinstance(when, datetime):
                continue
            at = start + len(raw)
            yield Entity("date", when.isoformat(timespec="minutes"), raw, start, at)

    def _number(self, text: str) -> Iterator[Entity]:
        for m in _NUMBER.finditer(text):
            yield Entity("number", _number_value(m.group(0)), m.group(0), m.start(), m.end())
