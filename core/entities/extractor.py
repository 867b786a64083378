"""Built-in extractors backed by kept libraries (phonenumbers, dateparser), plus the regex ids the
flows define; overlapping finds go to the more specific extractor.

Every finder is bounded on hostile text: the text is cut to `max_chars` (the intent model's own
limit), our patterns are linear (no two quantifiers can share a run of characters), e-mail
addresses are found from their `@` outwards, each finder stops after `MAX_FINDS` candidates,
and dateparser, which costs about a millisecond per character on dense input, only ever sees a
few short windows around date words."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Literal

import phonenumbers

from core.ports import Entity

BUILTIN_ENTITIES = frozenset({"email", "phone", "number", "amount", "date"})
MAX_CHARS = 512
"""Characters read by default: the intent model's default `NLU_MAX_CHARS`."""
MAX_FINDS = 32
"""Candidates one finder yields per message (a slot needs one; a list of a thousand numbers
would otherwise make the overlap check quadratic)."""

# RFC 5321's limits: a local part has at most 64 characters, a domain at most 253. Scanning
# no further than that from each `@` keeps the e-mail finder linear in the text.
_LOCAL_MAX, _DOMAIN_MAX = 64, 253
_AT = re.compile(r"(?<=[\w.+-])@(?=[\w-]+\.[\w-])")
"""An `@` that may join an address: a local part before it, a dotted domain after it."""
_LOCAL_TAIL = re.compile(r"[\w.+-]+\Z")
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")
_DOMAIN_CHAR = re.compile(r"[\w.-]")
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "usd": "USD", "eur": "EUR", "gbp": "GBP",
             "euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD",
             "pound": "GBP", "pounds": "GBP", "bucks": "USD"}  # fmt: skip
_NUM = r"\d{1,3}(?:[,.]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
# A number before its currency starts only where a number starts (not after a digit, nor after
# a digit and its separator): tried from every digit of a long run, the backtracking `\d+`
# made the pattern quadratic.
_AMOUNT = re.compile(
    rf"(?P<pre>[$€£])\s?(?P<n1>{_NUM})"
    rf"|(?<!\d)(?<!\d[.,])(?P<n2>{_NUM})\s?(?P<post>[$€£]|(?i:usd|eur|gbp|euros?|dollars?|pounds?|bucks)\b)"
)
_NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:[.,]\d+)?(?![\w])")
_DATEISH = re.compile(
    r"(?i)\b(?:today|tomorrow|yesterday|tonight|now|noon|midnight|next|last|ago|mon(?:day)?|"
    r"tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)"
    r"\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}"
    r"\s+\d|\b\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?\b|\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b"
)
# What dateparser reads: the words around date words (a date is written in a few words), in at
# most `_DATE_WINDOWS` windows of `_DATE_WINDOW` characters.
_DATE_BEFORE, _DATE_AFTER, _DATE_WINDOW, _DATE_WINDOWS = 16, 32, 64, 2
_PHONE_TRIES = 20
"""Number-like candidates phonenumbers may reject before it gives up on a message."""


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
    """`extract(text)` → entities in text order, found in the first `max_chars` characters (the
    text the intent model read). Build one per loaded flows (their regex ids) and share it: it
    keeps no state between calls, so any thread may call it."""

    def __init__(
        self, regexes: Iterable[RegexEntity] = (), region: str = "US", max_chars: int = MAX_CHARS
    ):
        self._regexes = [(r, re.compile(r.pattern)) for r in regexes]
        self._region = region
        self.max_chars = max_chars
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
        text = text[: self.max_chars]
        if not text.strip():
            return ()
        taken: list[tuple[int, int]] = []
        found: list[Entity] = []
        for finder in self._finders:
            for ent in islice(finder(text), MAX_FINDS):
                if any(ent.start < end and start < ent.end for start, end in taken):
                    continue
                taken.append((ent.start, ent.end))
                found.append(ent)
        return tuple(sorted(found, key=lambda e: e.start))

    def _custom(self, text: str) -> Iterator[Entity]:
        for spec, rx in self._regexes:
            for m in islice(rx.finditer(text), MAX_FINDS):
                raw = m.group(0)
                value = raw.upper() if spec.case == "upper" else raw
                value = raw.lower() if spec.case == "lower" else value
                yield Entity(spec.name, value, raw, m.start(), m.end())

    def _email(self, text: str) -> Iterator[Entity]:
        for start, end in _emails(text):
            raw = text[start:end]
            yield Entity("email", raw.lower(), raw, start, end)

    def _phone(self, text: str) -> Iterator[Entity]:
        matcher = phonenumbers.PhoneNumberMatcher(text, self._region, max_tries=_PHONE_TRIES)
        for m in matcher:
            value = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            yield Entity("phone", value, m.raw_string, m.start, m.end)

    def _amount(self, text: str) -> Iterator[Entity]:
        for m in _AMOUNT.finditer(text):
            number = m.group("n1") or m.group("n2")
            currency = _CURRENCY[(m.group("pre") or m.group("post")).lower()]
            value: dict[str, Any] = {"value": _to_float(number), "currency": currency}
            yield Entity("amount", value, m.group(0), m.start(), m.end())

    def _date(self, text: str) -> Iterator[Entity]:
        windows = _date_windows(text)
        if not windows:
            return
        from dateparser.search import search_dates  # slow import, only when needed

        for lo, hi in windows:
            window = text[lo:hi]
            found = search_dates(window, languages=["en"], settings={"PREFER_DATES_FROM": "future"})
            at = 0
            for raw, when in found or []:
                start = window.find(raw, at)
                if start < 0 or not _DATEISH.search(raw) or not isinstance(when, datetime):
                    continue
                at = start + len(raw)
                yield Entity("date", when.isoformat(timespec="minutes"), raw, lo + start, lo + at)

    def _number(self, text: str) -> Iterator[Entity]:
        for m in _NUMBER.finditer(text):
            yield Entity("number", _number_value(m.group(0)), m.group(0), m.start(), m.end())


def _emails(text: str) -> Iterator[tuple[int, int]]:
    """Spans of e-mail addresses, found from each `@`: the local part is the run of address
    characters just before it (at most 64), the domain two or more labels just after it (at
    most 253 characters). A run too long to be either is not an address."""
    done = 0  # where the previous address ended: finds never overlap
    at = _AT.search(text)
    while at is not None:
        lo = max(done, at.start() - _LOCAL_MAX - 1)
        local = _LOCAL_TAIL.search(text, lo, at.start())
        hi = min(len(text), at.end() + _DOMAIN_MAX)
        domain = _DOMAIN.match(text, at.end(), hi)
        if (
            local is not None
            and domain is not None
            and at.start() - local.start() <= _LOCAL_MAX
            and not (domain.end() == hi and _DOMAIN_CHAR.match(text, hi))
        ):
            yield local.start(), domain.end()
            done = domain.end()
        at = _AT.search(text, max(at.end(), done))


def _date_windows(text: str) -> list[tuple[int, int]]:
    """Where dateparser looks: each date word with the words around it, neighbours merged."""
    windows: list[tuple[int, int]] = []
    for m in _DATEISH.finditer(text):
        lo = _word_start(text, max(0, m.start() - _DATE_BEFORE), m.start())
        hi = _word_end(text, m.end(), min(len(text), m.end() + _DATE_AFTER))
        if windows and lo <= windows[-1][1]:
            first, last = windows[-1]
            if max(hi, last) - first <= _DATE_WINDOW:
                windows[-1] = (first, max(hi, last))
                continue
            if m.start() < last:
                continue  # read with the window before
            lo = last
        if len(windows) == _DATE_WINDOWS:
            break
        windows.append((lo, min(hi, lo + _DATE_WINDOW)))
    return windows


def _word_start(text: str, lo: int, limit: int) -> int:
    """`lo` moved forward (not past `limit`) to the start of a word: dateparser must not read
    half of one."""
    while lo < limit and lo > 0 and not text[lo - 1].isspace():
        lo += 1
    return lo


def _word_end(text: str, limit: int, hi: int) -> int:
    """`hi` moved back (not before `limit`) to the end of a word."""
    while hi > limit and hi < len(text) and not text[hi].isspace():
        hi -= 1
    return hi
