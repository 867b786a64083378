"""The recorded turns as lines of CSV or JSON Lines, for a team's own analysis: the text as it
was stored (redacted unless the team keeps raw text), never the customer's id or name."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any, Final, Literal

from core.conversations import TurnFact

Format = Literal["csv", "jsonl"]
FORMATS: Final[dict[Format, str]] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
FIELDS: Final = (
    "conversation_id",
    "channel",
    "key",
    "at",
    "text",
    "intent",
    "confidence",
    "ranking",
    "outcome",
    "flow",
    "flow_end",
    "latency",
    "asked_feedback",
    "feedback",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell that starts with one of these as a formula: a customer's text
must not become one in the team's spreadsheet."""


def record(conversation_id: int, channel: str, t: TurnFact) -> dict[str, Any]:
    """One turn as an export row (`at` as ISO 8601 in UTC; `ranking` as [[intent, p], ...])."""
    return {
        "conversation_id": conversation_id,
        "channel": channel,
        "key": t.key,
        "at": datetime.fromtimestamp(t.at, UTC).isoformat(),
        "text": t.text,
        "intent": t.intent,
        "confidence": t.confidence,
        "ranking": [[name, c] for name, c in t.ranking],
        "outcome": t.outcome,
        "flow": t.flow,
        "flow_end": t.flow_end,
        "latency": t.latency,
        "asked_feedback": t.asked_feedback,
        "feedback": t.feedback,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(_FORMULA) and not isinstance(value, float) else text


def csv_header() -> str:
    return _csv_line(FIELDS)


def _csv_line(cells: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def line(row: dict[str, Any], fmt: Format) -> str:
    """One row in `fmt`, ending with its line break."""
    if fmt == "jsonl":
        return json.dumps(row, ensure_ascii=False) + "\n"
    return _csv_line(_cell(row[f]) for f in FIELDS)
