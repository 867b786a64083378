"""The sections of a flow file besides its flows: intent names, entity patterns, HTTP actions and
the policy, read from every file into one `Sections`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.backlog import EDIT_POLICIES
from core.dialogue.model import EntitySpec, Feedback, HttpActionSpec, Policy, Src
from core.dialogue.templates import Template
from core.dialogue.yamlsrc import LDict, LList
from core.errors import FlowIssue, TemplateError
from core.review.examples import problems

POLICY_TEXTS = (
    "fallback",
    "clarify",
    "empty",
    "resume",
    "handoff",
    "handback",
    "resume_declined",
    "idle",
    "waiting",
    "apology",
    "both",
)
POLICY_INTENT_LISTS = ("small_talk", "menu")
POLICY_NUMBERS = {
    "below": float,
    "margin": float,
    "clarify_top": int,
    "handoff_after": int,
    "clarify_floor": float,
}
ACTION_KEYS = {"method", "url", "headers", "json", "secrets", "timeout", "retries", "cache_ttl"}


@dataclass
class Sections:
    """What the flow files declare besides their flows, gathered from every file by the loader
    (which checks the flows' references against it) and turned into the `Bot`."""

    intents: dict[str, Src] = field(default_factory=dict)
    entities: dict[str, EntitySpec] = field(default_factory=dict)
    actions: dict[str, HttpActionSpec] = field(default_factory=dict)
    policy_args: dict[str, Any] = field(default_factory=dict)
    policy_intents: list[tuple[str, Src]] = field(default_factory=list)
    policy_src: Src | None = None
    policy_flows: list[tuple[str, Src]] = field(default_factory=list)
    """Flows the policy names (`feedback.after`), checked once every flow is read."""
    labelled: list[tuple[str, Src]] = field(default_factory=list)
    """Intents only reviewed examples name (`core.review.trainfile`): defined elsewhere."""

    def policy(self) -> Policy:
        return Policy(**self.policy_args)


def _mapping(file: str, doc: LDict, key: str, issues: list[FlowIssue]) -> LDict | None:
    raw = doc.get(key)
    if raw is None:
        return None
    if not isinstance(raw, LDict):
        issues.append(FlowIssue(file, doc.line_of(key), f"{key}: expected a mapping"))
        return None
    return raw


def _tmpl(file: str, raw: Any, line: int, issues: list[FlowIssue]) -> Template:
    try:
        return Template.compile(str(raw))
    except TemplateError as exc:
        issues.append(FlowIssue(file, line, str(exc)))
        return Template(str(raw))


def read_intents(file: str, doc: LDict, sections: Sections, issues: list[FlowIssue]) -> None:
    raw = _mapping(file, doc, "intents", issues)
    for name in raw or ():
        if name == "out_of_scope":
            continue
        src = Src(file, raw.line_of(name)) if raw else Src(file, 0)
        body = raw[name] if raw else None
        examples = body.get("examples") if isinstance(body, LDict) else None
        examples = examples if isinstance(examples, LList) else LList()
        labelled = [e for e in examples if isinstance(e, LDict)]
        for example in labelled:
            issues.extend(FlowIssue(file, line, why) for line, why in problems(example))
        if labelled and len(labelled) == len(examples):
            # Labels from the review inbox name an intent defined elsewhere, never a new one.
            sections.labelled.append((name, src))
            continue
        sections.intents.setdefault(name, src)


def read_entities(file: str, doc: LDict, sections: Sections, issues: list[FlowIssue]) -> None:
    raw = _mapping(file, doc, "entities", issues)
    for name, spec in (raw or LDict()).items():
        line = raw.line_of(name) if raw else 0
        if not isinstance(spec, LDict) or "regex" not in spec:
            issues.append(FlowIssue(file, line, f"entity {name!r}: expected {{regex: ...}}"))
            continue
        try:
            re.compile(str(spec["regex"]))
        except re.error as exc:
            issues.append(FlowIssue(file, spec.line_of("regex"), f"bad regex: {exc}"))
            continue
        case = str(spec.get("case", "keep"))
        if case not in ("upper", "lower", "keep"):
            issues.append(FlowIssue(file, spec.line_of("case"), "case: upper, lower or keep"))
            case = "keep"
        sections.entities[name] = EntitySpec(name, str(spec["regex"]), case, Src(file, line))  # type: ignore[arg-type]


def _json(file: str, raw: Any, line: int, issues: list[FlowIssue]) -> Any:
    if isinstance(raw, LDict):
        return {k: _json(file, v, raw.line_of(k), issues) for k, v in raw.items()}
    if isinstance(raw, LList):
        return [_json(file, v, raw.line_of(i), issues) for i, v in enumerate(raw)]
    return _tmpl(file, raw, line, issues) if isinstance(raw, str) else raw


def read_actions(file: str, doc: LDict, sections: Sections, issues: list[FlowIssue]) -> None:
    raw = _mapping(file, doc, "actions", issues)
    for name, spec in (raw or LDict()).items():
        line = raw.line_of(name) if raw else 0
        if not isinstance(spec, LDict) or "url" not in spec:
            issues.append(FlowIssue(file, line, f"action {name!r}: expected {{url: ...}}"))
            continue
        for key in spec:
            if key not in ACTION_KEYS:
                issues.append(FlowIssue(file, spec.line_of(key), f"unknown key {key!r} in action"))
        headers = spec.get("headers") or LDict()
        sections.actions[name] = HttpActionSpec(
            name=name,
            method=_tmpl(file, spec.get("method", "GET"), spec.line_of("method"), issues),
            url=_tmpl(file, spec["url"], spec.line_of("url"), issues),
            headers={
                str(k): _tmpl(file, v, headers.line_of(k), issues) for k, v in headers.items()
            },
            json=_json(file, spec.get("json"), spec.line_of("json"), issues),
            secrets=tuple(str(s) for s in spec.get("secrets") or ()),
            timeout=float(spec.get("timeout", 5.0)),
            retries=int(spec.get("retries", 2)),
            cache_ttl=float(spec.get("cache_ttl", 0.0)),
            src=Src(file, line),
        )


def read_policy(file: str, doc: LDict, sections: Sections, issues: list[FlowIssue]) -> None:
    raw = _mapping(file, doc, "policy", issues)
    if raw is None:
        return
    if sections.policy_src is not None:
        issues.append(FlowIssue(file, raw.line, f"policy is already set in {sections.policy_src}"))
        return
    sections.policy_src = Src(file, raw.line)
    args = sections.policy_args
    for key, value in raw.items():
        line = raw.line_of(key)
        if key in POLICY_NUMBERS:
            try:
                args["threshold" if key == "below" else key] = POLICY_NUMBERS[key](value)
            except (TypeError, ValueError):
                issues.append(FlowIssue(file, line, f"{key}: expected a number"))
        elif key in POLICY_TEXTS:
            items = value if isinstance(value, list) else [value]
            args[key] = tuple(_tmpl(file, v, line, issues) for v in items)
        elif key == "global_intents" or key in POLICY_INTENT_LISTS:
            args[key] = tuple(str(i) for i in value or ())
            sections.policy_intents += [(str(i), Src(file, line)) for i in value or ()]
        elif key == "entity_flows":
            args[key] = {str(k): str(v) for k, v in (value or {}).items()}
            sections.policy_intents += [(str(i), Src(file, line)) for i in (value or {}).values()]
        elif key == "languages":
            args[key] = tuple(str(i).lower() for i in value or ())
        elif key == "other_language":
            read_languages(file, value, line, args, issues)
        elif key == "feedback":
            read_feedback(file, value, line, sections, issues)
        elif key == "titles":
            args[key] = {str(k): str(v) for k, v in (value or {}).items()}
            sections.policy_intents += [(str(i), Src(file, line)) for i in value or ()]
        elif key == "edits":
            if value in EDIT_POLICIES:
                args[key] = value
            else:
                known = ", ".join(sorted(EDIT_POLICIES))
                issues.append(FlowIssue(file, line, f"edits: expected one of {known}"))
        else:
            issues.append(FlowIssue(file, line, f"unknown policy key {key!r}"))


def read_languages(
    file: str, value: Any, line: int, args: dict[str, Any], issues: list[FlowIssue]
) -> None:
    """`other_language: {es: {say: ..., button: ...}, ...}`: per language, what to say to a
    message in it and the label of the talk-to-a-person button."""
    if not isinstance(value, LDict):
        issues.append(FlowIssue(file, line, "other_language: expected {code: {say, button}}"))
        return
    texts: dict[str, tuple[Template, ...]] = {}
    labels: dict[str, str] = {}
    for code, spec in value.items():
        at = value.line_of(code)
        if not isinstance(spec, LDict) or "say" not in spec:
            issues.append(FlowIssue(file, at, f"other_language.{code}: expected {{say, button}}"))
            continue
        items = spec["say"] if isinstance(spec["say"], list) else [spec["say"]]
        texts[str(code).lower()] = tuple(_tmpl(file, v, at, issues) for v in items)
        if "button" in spec:
            labels[str(code).lower()] = str(spec["button"])
    args["other_language"] = texts
    args["other_language_button"] = labels


FEEDBACK_KEYS = {"after", "ask", "up", "down", "thanks"}


def read_feedback(
    file: str, value: Any, line: int, sections: Sections, issues: list[FlowIssue]
) -> None:
    """`feedback: {after: [flow, ...], ask, up, down, thanks}`."""
    if not isinstance(value, LDict) or not isinstance(value.get("after"), LList):
        issues.append(FlowIssue(file, line, "feedback: expected {after: [flow, ...], ask: ...}"))
        return
    for key in value:
        if key not in FEEDBACK_KEYS:
            issues.append(FlowIssue(file, value.line_of(key), f"unknown feedback key {key!r}"))
    after = [str(f) for f in value["after"]]
    sections.policy_flows += [(f, Src(file, value.line_of("after"))) for f in after]
    args: dict[str, Any] = {"after": frozenset(after)}
    for key in ("ask", "thanks"):
        if key in value:
            items = value[key] if isinstance(value[key], list) else [value[key]]
            args[key] = tuple(_tmpl(file, v, value.line_of(key), issues) for v in items)
    for key in ("up", "down"):
        if key in value:
            args[key] = str(value[key])
    sections.policy_args["feedback"] = Feedback(**args)
