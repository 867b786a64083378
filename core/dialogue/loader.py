"""Reads every flow file of a directory into one checked `Bot`, or refuses with file:line."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from core.dialogue.compile import FlowCompiler, Refs
from core.dialogue.model import Bot, End, Flow, SlotSpec, Src
from core.dialogue.sections import Sections, read_actions, read_entities, read_intents, read_policy
from core.dialogue.templates import Condition
from core.dialogue.yamlsrc import LDict, LList, load_file
from core.entities import BUILTIN_ENTITIES
from core.errors import FlowError, FlowIssue, TemplateError, YamlSyntaxError

TOP_KEYS = {"intents", "flows", "actions", "entities", "policy"}
FLOW_KEYS = {"title", "when", "slots", "steps", "resumable"}
SLOT_KEYS = {"entity", "intents", "validate", "invalid", "retries", "on_fail"}
ON_FAIL_DEFAULT = "Sorry, that didn't work out. Type 'help' to see what I can do."


def flow_files(directory: Path) -> list[Path]:
    """Every YAML file under `directory` except the held-out evaluation split."""
    files = [*directory.rglob("*.yml"), *directory.rglob("*.yaml")]
    return sorted(p for p in files if "heldout" not in p.relative_to(directory).parts)


def load_bot(directory: Path, actions: Collection[str] | None = None) -> Bot:
    """Load and check the flows in `directory`. `actions` are the names of registered Python
    actions (None: do not check action names). Raises `FlowError` listing every mistake."""
    issues: list[FlowIssue] = []
    if not directory.is_dir():
        reason = (
            "a file, not a directory: give the folder of flow files"
            if directory.exists()
            else "flows directory not found"
        )
        raise FlowError([FlowIssue(str(directory), 0, reason)])
    sections = Sections()
    docs: list[tuple[str, LDict]] = []
    for path in flow_files(directory):
        name = str(path)
        try:
            doc = load_file(path)
        except YamlSyntaxError as exc:
            issues.append(FlowIssue(name, exc.line, exc.reason))
            continue
        if doc is None:
            continue
        if not isinstance(doc, LDict):
            issues.append(FlowIssue(name, 1, "expected a mapping with flows:, intents:, ..."))
            continue
        for key in doc:
            if key not in TOP_KEYS:
                issues.append(FlowIssue(name, doc.line_of(key), f"unknown top-level key {key!r}"))
        read_intents(name, doc, sections, issues)
        read_entities(name, doc, sections, issues)
        read_actions(name, doc, sections, issues)
        read_policy(name, doc, sections, issues)
        docs.append((name, doc))
    flows: dict[str, Flow] = {}
    refs = Refs()
    for name, doc in docs:
        raw = doc.get("flows")
        if raw is None:
            continue
        if not isinstance(raw, LDict):
            issues.append(FlowIssue(name, doc.line_of("flows"), "flows: expected a mapping"))
            continue
        for fname, body in raw.items():
            line = raw.line_of(fname)
            if fname in flows:
                issues.append(FlowIssue(name, line, f"flow {fname!r} is defined twice"))
            flow = _flow(name, fname, body, line, issues, refs, sections)
            if flow is not None:
                flows[fname] = flow
    triggers = _triggers(flows, issues)
    _check_refs(refs, flows, sections, actions, issues)
    if issues:
        raise FlowError(issues)
    return Bot(
        flows=flows,
        triggers=triggers,
        intents=frozenset(sections.intents),
        actions=sections.actions,
        entities=sections.entities,
        policy=sections.policy(),
        files=tuple(n for n, _ in docs),
    )


def _flow(
    file: str,
    name: str,
    body: Any,
    line: int,
    issues: list[FlowIssue],
    refs: Refs,
    sections: Sections,
) -> Flow | None:
    if not isinstance(body, LDict):
        issues.append(FlowIssue(file, line, f"flow {name!r}: expected a mapping"))
        return None
    for key in body:
        if key not in FLOW_KEYS:
            issues.append(FlowIssue(file, body.line_of(key), f"unknown key {key!r} in flow"))
    if "steps" not in body:
        issues.append(FlowIssue(file, line, f"flow {name!r} has no steps"))
        return None
    when = body.get("when") or LDict()
    wanted = when.get("intent", []) if isinstance(when, dict) else []
    intents = tuple(str(i) for i in (wanted if isinstance(wanted, list) else [wanted]))
    when_line = body.line_of("when")
    for intent in intents:
        refs.intents.append((intent, Src(file, when_line)))
    flow_refs = Refs()
    comp = FlowCompiler(file, name, issues, flow_refs)
    if not comp.block(body["steps"], body.line_of("steps")):
        comp.emit(End("flow", Src(file, body.line_of("steps"))))
    slots = _slots(comp, body.get("slots"), body.line_of("slots"), sections)
    program = comp.finish()
    for slot, src in flow_refs.slots:
        if slot not in slots:
            issues.append(
                FlowIssue(src.file, src.line, f"undefined slot {slot!r} in flow {name!r}")
            )
    refs.intents += flow_refs.intents
    refs.actions += flow_refs.actions
    refs.flows += flow_refs.flows
    title = str(body.get("title", name.replace("_", " ")))
    resumable = bool(body.get("resumable", True))
    return Flow(name, title, intents, slots, program, Src(file, line), resumable)


def _slots(comp: FlowCompiler, raw: Any, line: int, sections: Sections) -> dict[str, SlotSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, LDict):
        comp.err(line, "slots: expected a mapping of slot name to its definition")
        return {}
    out: dict[str, SlotSpec] = {}
    for name, spec in raw.items():
        ln = raw.line_of(name)
        spec = spec if isinstance(spec, LDict) else LDict()
        for key in spec:
            if key not in SLOT_KEYS:
                comp.err(spec.line_of(key), f"unknown key {key!r} in slot {name!r}")
        entity = spec.get("entity")
        if (
            entity is not None
            and entity not in BUILTIN_ENTITIES
            and entity not in sections.entities
        ):
            comp.err(spec.line_of("entity"), f"undefined entity {entity!r}")
        intents = dict(spec.get("intents") or {})
        for intent in intents:
            comp.refs.intents.append((str(intent), Src(comp.file, spec.line_of("intents"))))
        validate = None
        if "validate" in spec:
            try:
                validate = Condition.compile(str(spec["validate"]))
            except TemplateError as exc:
                comp.err(spec.line_of("validate"), str(exc))
        invalid = comp.texts(spec["invalid"], spec.line_of("invalid")) if "invalid" in spec else ()
        on_fail = spec.get("on_fail")
        fail_src = Src(comp.file, spec.line_of("on_fail"))
        fail_steps = on_fail if isinstance(on_fail, LList) else None
        on_fail_pc = comp.side_block(fail_steps, ON_FAIL_DEFAULT, fail_src)
        retries = spec.get("retries", 2)
        if not isinstance(retries, int) or retries < 0:
            comp.err(spec.line_of("retries"), "retries: expected a whole number >= 0")
            retries = 2
        out[name] = SlotSpec(
            name, entity, intents, validate, invalid, retries, on_fail_pc, Src(comp.file, ln)
        )
    return out


def _triggers(flows: dict[str, Flow], issues: list[FlowIssue]) -> dict[str, str]:
    triggers: dict[str, str] = {}
    for flow in flows.values():
        for intent in flow.intents:
            if intent in triggers:
                first = flows[triggers[intent]]
                issues.append(
                    FlowIssue(
                        flow.src.file,
                        flow.src.line,
                        f"when intent {intent!r} is already claimed by flow {first.name!r} "
                        f"({first.src})",
                    )
                )
                continue
            triggers[intent] = flow.name
    return triggers


def _check_refs(
    refs: Refs,
    flows: dict[str, Flow],
    sections: Sections,
    actions: Collection[str] | None,
    issues: list[FlowIssue],
) -> None:
    known_intents = set(sections.intents) | {"out_of_scope"}
    for intent, src in refs.intents + sections.policy_intents + sections.labelled:
        if intent not in known_intents:
            issues.append(FlowIssue(src.file, src.line, f"undefined intent {intent!r}"))
    for flow, src in refs.flows + sections.policy_flows:
        if flow not in flows:
            issues.append(FlowIssue(src.file, src.line, f"undefined flow {flow!r}"))
    if actions is None:
        return
    known_actions = set(actions) | set(sections.actions)
    for action, src in refs.actions:
        if action not in known_actions:
            issues.append(FlowIssue(src.file, src.line, f"undefined action {action!r}"))
