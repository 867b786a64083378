"""Jinja2 templates and conditions in a sandbox: flows say things and decide things without
`eval`, and a template that fails at run time renders a safe fallback instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.errors import TemplateError

log = structlog.get_logger(__name__)

ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
SAFE_FALLBACK = "Sorry, something went wrong on my side. Please try again, or type 'human'."


def _slot_refs(tree: nodes.Node) -> frozenset[str]:
    """Names read as `slots.x` or `slots['x']`, so the loader can check they are declared."""
    found: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "slots":
            found.add(node.attr)
    for item in tree.find_all(nodes.Getitem):
        if not (isinstance(item.node, nodes.Name) and item.node.name == "slots"):
            continue
        if isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            found.add(item.arg.value)
    return frozenset(found)


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """A response text of the flow files, compiled once in Jinja2's sandbox; `slots_used` lets
    the loader check that every slot it reads is declared."""

    source: str
    slots_used: frozenset[str] = frozenset()
    _render: Callable[..., str] | None = field(default=None, repr=False)

    @classmethod
    def compile(cls, source: str) -> Template:
        if "{" not in source:
            return cls(source)
        try:
            tree = ENV.parse(source)
            compiled = ENV.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template does not compile: {exc.message}") from exc
        return cls(source, _slot_refs(tree), compiled.render)

    def render(self, context: Mapping[str, Any], fallback: str = SAFE_FALLBACK) -> str:
        if self._render is None:
            return self.source
        try:
            return self._render(**context)
        except Exception as exc:  # noqa: BLE001 - any template failure gets the safe fallback
            log.error("template.failed", template=self.source[:80], error=type(exc).__name__)
            return fallback

    def value(self, context: Mapping[str, Any]) -> Any:
        """The rendered text, raising on failure (for action arguments, which must not be
        silently replaced)."""
        return self.source if self._render is None else self._render(**context)


@dataclass(frozen=True, slots=True, eq=False)
class Condition:
    """A flow's `if:` or a slot's `validate:` expression, compiled once in the same sandbox as
    templates (never `eval`)."""

    source: str
    slots_used: frozenset[str] = frozenset()
    _eval: Callable[..., Any] | None = field(default=None, repr=False)

    @classmethod
    def compile(cls, source: str) -> Condition:
        try:
            tree = ENV.parse("{{ " + source + " }}")
            compiled = ENV.compile_expression(source, undefined_to_none=False)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"condition does not compile: {exc.message}") from exc
        return cls(source, _slot_refs(tree), compiled)

    def test(self, context: Mapping[str, Any]) -> bool:
        """True or false; a condition that fails is false, and logged."""
        assert self._eval is not None
        try:
            return bool(self._eval(**context))
        except Exception as exc:  # noqa: BLE001 - a failing condition is false, never a crash
            log.error("condition.failed", condition=self.source[:80], error=type(exc).__name__)
            return False
