"""Which language a message is written in, offline, so the bot can say in that language that it
only speaks its own (lingua: n-gram models shipped in the package, good on short texts)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

MIN_WORDS = 3
"""Fewer words than this say too little about a language ("ok", "hola", "danke")."""
MIN_CONFIDENCE = 0.75
MAX_CHARS = 300
"""Detection reads no further: a language shows in its first sentence or two."""

_WORD = re.compile(r"[^\W\d_]{2,}")

Detect = Callable[[str], str | None]


def language_detector(languages: Iterable[str]) -> Detect:
    """A detector choosing among `languages` (ISO 639-1 codes: the bot's own and those it
    has a message for): the code of the message's language, or None when unsure."""
    return _build(tuple(sorted({c.lower() for c in languages})))


@lru_cache(maxsize=8)
def _build(codes: tuple[str, ...]) -> Detect:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    langs = []
    for code in codes:
        try:
            langs.append(Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())))
        except (AttributeError, ValueError):
            continue
    if len(langs) < 2:
        return lambda text: None
    detector = LanguageDetectorBuilder.from_languages(*langs).build()

    def detect(text: str) -> str | None:
        text = text[:MAX_CHARS]
        if len(_WORD.findall(text)) < MIN_WORDS:
            return None
        values = detector.compute_language_confidence_values(text)
        if not values or values[0].value < MIN_CONFIDENCE:
            return None
        return str(values[0].language.iso_code_639_1.name).lower()

    return detect
