"""A turn as an export line: every field, ISO times in UTC, JSON Lines as JSON, and CSV cells a
spreadsheet would run as formulas made inert."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from core.conversations import TurnFact
from core.turn_export import FIELDS, csv_header, line, record

FACT = TurnFact(
    key="ev1",
    at=1_764_979_200.5,
    text='=cmd|"/c calc"!A1, said [email]',
    intent="refund",
    confidence=0.5,
    ranking=[("refund", 0.5), ("greet", 0.25)],
    outcome="answered",
    flow=None,
    flow_end=None,
    latency=-0.0,
    asked_feedback=True,
    feedback=None,
)


def test_jsonl_keeps_the_values_as_they_are() -> None:
    row = json.loads(line(record(7, "webchat", FACT), "jsonl"))
    assert list(row) == list(FIELDS)
    assert row["at"] == "2025-12-06T00:00:00.500000+00:00"
    assert row["text"] == FACT.text and row["ranking"] == [["refund", 0.5], ["greet", 0.25]]
    assert (row["conversation_id"], row["flow"], row["asked_feedback"]) == (7, None, True)


def test_csv_cells_never_start_a_formula() -> None:
    text = csv_header() + line(record(7, "webchat", FACT), "csv")
    header, cells = list(csv.reader(io.StringIO(text)))
    row = dict(zip(header, cells, strict=True))
    assert row["text"] == "'" + FACT.text
    assert row["ranking"] == '[["refund", 0.5], ["greet", 0.25]]'
    assert (row["flow"], row["asked_feedback"], row["latency"]) == ("", "true", "-0.0")
    plus = line(record(1, "slack", replace(FACT, text="+1 555")), "csv")
    assert "'+1 555" in plus and text.endswith("\r\n")
