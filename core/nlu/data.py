"""Intent examples from the bot's YAML (`intents:` → name → `{examples: [...]}`), with the inline
`[text](entity)` markup stripped, and from CLINC150-style JSON for the benchmark."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.dialogue.yamlsrc import load_text
from core.errors import NluDataError, YamlSyntaxError
from core.review.examples import labelled_text

OUT_OF_SCOPE = "out_of_scope"
"""Reserved intent: examples that belong to no intent. Never a class; they tune the threshold."""

_MARKUP = re.compile(r"\[([^\[\]]+)\]\(([^()]+)\)")


@dataclass(frozen=True, slots=True)
class Example:
    """One training example: a text and the intent it belongs to."""

    text: str
    intent: str


def strip_markup(text: str) -> str:
    """`where is order [A1B2C3](order_id)` → `where is order A1B2C3`."""
    return _MARKUP.sub(r"\1", text)


def parse_intents(doc: Any, where: str) -> list[Example]:
    """The `intents:` mapping of one YAML document (absent → no examples)."""
    if not isinstance(doc, dict) or doc.get("intents") is None:
        return []
    intents = doc["intents"]
    if not isinstance(intents, dict):
        raise NluDataError(f"{where}: `intents:` must map intent names to {{examples: [...]}}")
    out: list[Example] = []
    for name, body in intents.items():
        examples = body.get("examples") if isinstance(body, dict) else body
        if not isinstance(examples, list):
            raise NluDataError(f"{where}: intent {name!r} needs `examples:` as a list of strings")
        for ex in examples:
            if isinstance(ex, dict):  # a labelled example (see `core.review.trainfile`)
                ex = labelled_text(ex, where, str(name))
            if not isinstance(ex, str | int | float):
                raise NluDataError(f"{where}: intent {name!r} has a non-text example {ex!r}")
            text = strip_markup(str(ex)).strip()
            if text:
                out.append(Example(text, str(name)))
    return out


def load_file(path: Path) -> list[Example]:
    try:
        # Kept with line numbers, so a broken labelled example is reported as file:line.
        doc = load_text(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NluDataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise NluDataError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None
    except YamlSyntaxError as exc:
        raise NluDataError(f"{path}:{exc.line}: not valid YAML ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise NluDataError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_intents(doc, str(path))


def load_flows_dir(flows_dir: Path) -> list[Example]:
    """Every `*.yml`/`*.yaml` under `flows_dir` except `heldout/`, in a stable order."""
    if not flows_dir.is_dir():
        raise NluDataError(f"{flows_dir}: no such flows directory; set FLOWS_DIR")
    files = sorted(
        p
        for p in flows_dir.rglob("*")
        if p.suffix in (".yml", ".yaml")
        and p.is_file()
        and "heldout" not in p.relative_to(flows_dir).parts
    )
    out: list[Example] = []
    for p in files:
        out.extend(load_file(p))
    if not out:
        raise NluDataError(f"{flows_dir}: no `intents:` examples in any YAML file")
    return out


def load_data(path: Path) -> list[Example]:
    """A directory of flows or one YAML file."""
    return load_flows_dir(path) if path.is_dir() else load_file(path)


def load_clinc(path: Path, split: str) -> list[Example]:
    """One split of CLINC150's `train_val.json`; its `oos` label becomes `out_of_scope`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Example(t, OUT_OF_SCOPE if i == "oos" else i) for t, i in data[split]]


def in_scope(examples: Iterable[Example]) -> list[Example]:
    return [e for e in examples if e.intent != OUT_OF_SCOPE]


def out_of_scope(examples: Iterable[Example]) -> list[Example]:
    return [e for e in examples if e.intent == OUT_OF_SCOPE]


def data_hash(examples: Sequence[Example]) -> str:
    """Order-independent digest of the examples: the data half of a model's fingerprint."""
    h = hashlib.sha256()
    for intent, text in sorted((e.intent, e.text) for e in examples):
        h.update(f"{intent}\t{text}\n".encode())
    return h.hexdigest()
