"""A labelled example of the training data (a mapping with the words, the label, who gave it
and when): what makes one valid, each mistake with its line. Shared by the flow loader, the
training data loader and the reviewed examples file."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from core.errors import NluDataError

LABELS = ("right", "relabel", "example")
"""The labels that become training examples (an ignored turn teaches nothing)."""
KEYS = frozenset({"text", "label", "was", "by", "at", "turn"})
MAX_TEXT = 1000


def _line(raw: Mapping[str, Any], key: str) -> int:
    """The key's line when the mapping kept lines (`core.dialogue.yamlsrc.LDict`), else 0."""
    line_of = getattr(raw, "line_of", None)
    return int(line_of(key)) if callable(line_of) else 0


def problems(raw: Mapping[str, Any]) -> list[tuple[int, str]]:
    """What is wrong with one labelled example (a mapping), each with its line."""
    out: list[tuple[int, str]] = []
    for key in raw:
        if key not in KEYS:
            out.append((_line(raw, key), f"unknown key {key!r} in a labelled example"))
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        out.append((_line(raw, "text"), "a labelled example needs `text:` (the words)"))
    elif len(text) > MAX_TEXT:
        out.append((_line(raw, "text"), f"`text:` longer than {MAX_TEXT} characters"))
    if raw.get("label") not in LABELS:
        out.append((_line(raw, "label"), f"`label:` must be one of {', '.join(LABELS)}"))
    if not isinstance(raw.get("by"), str) or not raw["by"].strip():
        out.append((_line(raw, "by"), "`by:` must name who labelled it"))
    if not _is_time(raw.get("at")):
        out.append((_line(raw, "at"), "`at:` must be a time like 2026-12-06T23:10:00Z"))
    if "turn" in raw and (not isinstance(raw["turn"], int) or isinstance(raw["turn"], bool)):
        out.append((_line(raw, "turn"), "`turn:` must be a whole number"))
    if "was" in raw and not isinstance(raw["was"], str | None):
        out.append((_line(raw, "was"), "`was:` must be an intent name"))
    return out


def _is_time(value: Any) -> bool:
    if isinstance(value, datetime | date):
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def labelled_text(raw: Any, file: str, intent: str) -> str:
    """The words of a labelled example; `NluDataError` with file:line when it is not one."""
    if not isinstance(raw, Mapping):
        raise NluDataError(f"{file}: intent {intent!r} has a non-text example {raw!r}")
    found = problems(raw)
    if found:
        line, reason = found[0]
        raise NluDataError(f"{file}:{line}: {reason}")
    return str(raw["text"])
