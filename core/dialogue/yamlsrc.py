"""YAML read with line numbers kept, so every mistake can be reported as file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.errors import YamlSyntaxError


class LDict(dict[str, Any]):
    """A mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0
    lines: dict[str, int]
    texts: dict[str, str]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)

    def text_of(self, key: str) -> str:
        """A scalar value as it was written (empty for a null): YAML reads a bare `yes`, `no`
        or `on` as a boolean and `007` as 7, where a customer's message is the text itself."""
        value = self.get(key)
        if value is None:
            return ""
        written: dict[str, str] = getattr(self, "texts", {})
        return written.get(key, str(value))


class LList(list[Any]):
    """A sequence that remembers its own line and the line of each item (1-based)."""

    line: int = 0
    lines: list[int]

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LDict:
    loader.flatten_mapping(node)
    out = LDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    out.texts = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[str(key)] = loader.construct_object(value_node, deep=True)
        out.lines[str(key)] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.ScalarNode):
            out.texts[str(key)] = value_node.value
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LList:
    out = LList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [n.start_mark.line + 1 for n in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_text(text: str) -> Any:
    """Parse YAML text; a syntax error becomes `YamlSyntaxError` with its line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"YAML syntax: {exc.problem or exc}") from exc


def load_file(path: Path) -> Any:
    """A file that cannot be read or is not UTF-8 is a mistake with its line, not a traceback."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlSyntaxError(1, f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlSyntaxError(line, "not UTF-8 text") from exc
    return load_text(text)
