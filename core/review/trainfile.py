"""The reviewed examples file (`flows/reviewed.yml`): the review inbox's labels as training data,
in the `intents:` shape of every flow file, each example saying who labelled it and when. It is
reviewed like any other flow change, and `gateway train` reads it with the rest.

    intents:
      order_status:
        examples:
          - text: where is my parcel
            label: relabel          # right | relabel | example
            was: greet              # what the model said
            by: ann
            at: '2026-12-06T23:10:00Z'
            turn: 42                # the recorded turn (one entry per turn)
          - a plain example added by hand
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from core.dialogue.yamlsrc import LDict, LList, load_file
from core.errors import NluDataError, YamlSyntaxError
from core.review.examples import labelled_text

FILE_NAME = "reviewed.yml"
HEADER = """\
# Examples labelled in the console's review inbox (written by the console; review the change
# like any other flow change). `gateway train` learns from them with the other flow files.
# Each one: the customer's words (redacted unless STORE_RAW_TEXT) or a reviewer's new example,
# `label` right / relabel / example, `was` the model's intent, `by` and `at` who and when.
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One example of the file; `label` None: a plain example added by hand."""

    intent: str
    text: str
    label: str | None = None
    by: str | None = None
    at: str | None = None
    turn: int | None = None
    was: str | None = None


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read(path: Path) -> list[Entry]:
    """Every example of the file, in order; a missing file has none. A broken file is refused
    with file:line, so a label is never written over a mistake."""
    if not path.exists():
        return []
    try:
        doc = load_file(path)
    except YamlSyntaxError as exc:
        raise NluDataError(f"{path}:{exc.line}: {exc.reason}") from None
    if doc is None:
        return []
    intents = doc.get("intents") if isinstance(doc, LDict) else None
    if not isinstance(intents, LDict):
        raise NluDataError(f"{path}:1: expected `intents:` mapping intent names to examples")
    out: list[Entry] = []
    for intent, body in intents.items():
        examples = body.get("examples") if isinstance(body, LDict) else None
        if not isinstance(examples, LList):
            line = intents.line_of(intent)
            raise NluDataError(f"{path}:{line}: intent {intent!r} needs `examples:` as a list")
        for i, ex in enumerate(examples):
            if isinstance(ex, str | int | float) and not isinstance(ex, bool):
                out.append(Entry(str(intent), str(ex)))
                continue
            if not isinstance(ex, LDict):
                raise NluDataError(f"{path}:{examples.line_of(i)}: not an example: {ex!r}")
            labelled_text(ex, str(path), str(intent))
            at = ex["at"]
            out.append(
                Entry(
                    intent=str(intent),
                    text=str(ex["text"]),
                    label=str(ex["label"]),
                    by=str(ex["by"]),
                    at=at if isinstance(at, str) else at.isoformat(),
                    turn=ex.get("turn"),
                    was=ex.get("was"),
                )
            )
    return out


def render(entries: list[Entry]) -> str:
    by_intent: dict[str, list[Any]] = {}
    for e in entries:
        if e.label is None:
            item: Any = e.text
        else:
            item = {"text": e.text, "label": e.label}
            if e.was is not None:
                item["was"] = e.was
            item |= {"by": e.by, "at": e.at}
            if e.turn is not None:
                item["turn"] = e.turn
        by_intent.setdefault(e.intent, []).append(item)
    doc = {"intents": {name: {"examples": items} for name, items in sorted(by_intent.items())}}
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """One writer at a time among the processes of this machine (several `serve`)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def file_in(flows_dir: Path) -> Path:
    return flows_dir / FILE_NAME


def lock_in(data_dir: Path) -> Path:
    """The writers' lock: beside the process's data, since the flows folder may be shared."""
    return data_dir / f"{FILE_NAME}.lock"


def _rewrite(path: Path, lock: Path, turns: set[int], add: Entry | None) -> int:
    """Drops the examples of `turns`, adds `add`; returns how many were dropped."""
    with _locked(lock):
        kept = read(path)
        entries = [e for e in kept if e.turn is None or e.turn not in turns]
        if add is not None:
            entries.append(add)
        elif len(entries) == len(kept):
            return 0
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(render(entries), encoding="utf-8")
        # A reader (a retrain, `flows check`) sees the old file or the new one, never half.
        os.replace(tmp, path)
        return len(kept) - len(entries) + (add is not None)


def save(path: Path, lock: Path, entry: Entry) -> None:
    """Write `entry`, replacing any earlier label of the same turn."""
    if entry.turn is None:
        raise ValueError("a label from the inbox names its turn")
    _rewrite(path, lock, {entry.turn}, entry)


def drop(path: Path, lock: Path, *turns: int) -> int:
    """Remove the examples of these turns (marked ignore, or their customer erased); returns
    how many there were. The file is left as it is when it holds none of them."""
    if not path.exists() or not turns:
        return 0
    return _rewrite(path, lock, set(turns), None)
