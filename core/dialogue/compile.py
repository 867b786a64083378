"""Compiles one flow's YAML steps into a flat program, collecting every mistake with its line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.dialogue.model import (
    Ask,
    Branch,
    ButtonSpec,
    Call,
    End,
    Goto,
    Handoff,
    Jump,
    Op,
    Retry,
    Say,
    SetSlot,
    Src,
)
from core.dialogue.templates import Condition, Template
from core.dialogue.yamlsrc import LDict, LList
from core.errors import FlowIssue, TemplateError

KINDS = ("say", "ask", "call", "if", "goto", "jump", "handoff", "end", "retry", "set")
MODIFIERS = {
    "say": {"buttons"},
    "ask": {"buttons", "slot"},
    "call": {"with", "as", "on_error"},
    "if": {"then", "else"},
    "set": {"value"},
}
TERMINAL = (Goto, Handoff, End, Jump, Retry)
DEFAULT_ON_ERROR = "Sorry, I can't do that right now. Please try again in a little while."


@dataclass
class Refs:
    """What a flow refers to, checked against the whole bot once every file is read."""

    intents: list[tuple[str, Src]] = field(default_factory=list)
    slots: list[tuple[str, Src]] = field(default_factory=list)
    actions: list[tuple[str, Src]] = field(default_factory=list)
    flows: list[tuple[str, Src]] = field(default_factory=list)


class FlowCompiler:
    """Compiles one flow's steps into its flat program of operations, noting every mistake in
    `issues` with its line; the loader runs one per flow."""

    def __init__(self, file: str, flow: str, issues: list[FlowIssue], refs: Refs):
        self.file = file
        self.flow = flow
        self.issues = issues
        self.refs = refs
        self.ops: list[Op | None] = []
        self.labels: dict[str, int] = {}
        self.jumps: list[tuple[int, str, Src]] = []
        self.after_terminal: list[tuple[str | None, Src]] = []
        self.deferred: list[tuple[Callable[[int], None], LList | None, Src]] = []

    # -- helpers -------------------------------------------------------------------------
    def err(self, line: int, reason: str) -> None:
        self.issues.append(FlowIssue(self.file, line, reason))

    def src(self, line: int) -> Src:
        return Src(self.file, line)

    def template(self, raw: Any, line: int) -> Template:
        try:
            t = Template.compile(str(raw))
        except TemplateError as exc:
            self.err(line, str(exc))
            return Template(str(raw))
        self.refs.slots.extend((s, self.src(line)) for s in t.slots_used)
        return t

    def texts(self, raw: Any, line: int) -> tuple[Template, ...]:
        items = list(raw) if isinstance(raw, list) else [raw]
        if not items or any(not isinstance(i, str | int | float) for i in items):
            self.err(line, "expected a text or a list of text variations")
            return (Template(""),)
        lines = raw.lines if isinstance(raw, LList) else [line] * len(items)
        return tuple(self.template(i, ln) for i, ln in zip(items, lines, strict=False))

    def buttons(self, raw: Any, line: int) -> tuple[ButtonSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, LList):
            self.err(line, "buttons: expected a list of {label, intent} or {label, payload}")
            return ()
        out = []
        for i, b in enumerate(raw):
            ln = raw.line_of(i)
            if not isinstance(b, LDict) or "label" not in b or ("intent" in b) == ("payload" in b):
                self.err(ln, "a button needs a label and exactly one of intent or payload")
                continue
            if "intent" in b:
                self.refs.intents.append((str(b["intent"]), self.src(b.line_of("intent"))))
                out.append(ButtonSpec(str(b["label"]), f"/{b['intent']}"))
            else:
                out.append(ButtonSpec(str(b["label"]), str(b["payload"])))
        return tuple(out)

    def emit(self, op: Op | None) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    # -- steps ---------------------------------------------------------------------------
    def block(self, steps: Any, line: int) -> bool:
        """Compile a list of steps; True when it ends in a step that never falls through."""
        if not isinstance(steps, LList):
            self.err(line, "expected a list of steps")
            return False
        terminal = False
        for i, step in enumerate(steps):
            ln = steps.line_of(i)
            if terminal:
                sid = step.get("id") if isinstance(step, LDict) else None
                self.after_terminal.append((str(sid) if sid else None, self.src(ln)))
            terminal = self.step(step, ln)
        return terminal

    def step(self, step: Any, line: int) -> bool:
        if not isinstance(step, LDict):
            self.err(line, "a step must be a mapping such as {say: ...}")
            return False
        kinds = [k for k in step if k in KINDS]
        if len(kinds) != 1:
            unknown = [k for k in step if k not in KINDS and k != "id"]
            what = f"unknown step kind {unknown[0]!r}" if unknown and not kinds else None
            self.err(line, what or f"a step needs exactly one of: {', '.join(KINDS)}")
            return False
        kind = kinds[0]
        extra = set(step) - {kind, "id"} - MODIFIERS.get(kind, set())
        if extra:
            self.err(line, f"unknown key {sorted(extra)[0]!r} in a {kind} step")
        if "id" in step:
            sid = str(step["id"])
            if sid in self.labels:
                self.err(line, f"step id {sid!r} is used twice in flow {self.flow!r}")
            self.labels[sid] = len(self.ops)
        value, ln, src = step[kind], step.line_of(kind), self.src(line)
        handler = getattr(self, f"_{kind}")
        return bool(handler(step, value, ln, src))

    def _say(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        self.emit(Say(self.texts(value, ln), self.buttons(step.get("buttons"), ln), src))
        return False

    def _ask(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        slot = step.get("slot")
        if slot is not None:
            self.refs.slots.append((str(slot), self.src(step.line_of("slot"))))
        texts, buttons = self.texts(value, ln), self.buttons(step.get("buttons"), ln)
        self.emit(Ask(texts, buttons, str(slot) if slot is not None else None, src))
        return False

    def _args(self, raw: Any, line: int) -> Any:
        if isinstance(raw, LDict):
            return {k: self._args(v, raw.line_of(k)) for k, v in raw.items()}
        if isinstance(raw, LList):
            return [self._args(v, raw.line_of(i)) for i, v in enumerate(raw)]
        return self.template(raw, line) if isinstance(raw, str) else raw

    def _call(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        self.refs.actions.append((str(value), self.src(ln)))
        args = self._args(step.get("with") or LDict(), step.line_of("with"))
        bind = str(step["as"]) if "as" in step else None
        at = self.emit(None)
        action = str(value)

        def patch(pc: int) -> None:
            self.ops[at] = Call(action, args, bind, pc, src)

        self.deferred.append((patch, step.get("on_error"), src))
        return False

    def _if(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        try:
            cond = Condition.compile(str(value))
            self.refs.slots.extend((s, self.src(ln)) for s in cond.slots_used)
        except TemplateError as exc:
            self.err(ln, str(exc))
            cond = Condition.compile("false")
        if "then" not in step:
            self.err(ln, "an if step needs then: [steps]")
        at = self.emit(None)
        then_end = self.block(step.get("then", LList()), step.line_of("then"))
        jump_at = self.emit(None)
        else_pc = len(self.ops)
        else_end = self.block(step["else"], step.line_of("else")) if "else" in step else False
        self.ops[at] = Branch(cond, else_pc, src)
        self.ops[jump_at] = Jump(len(self.ops), src)
        return then_end and else_end

    def _goto(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        self.refs.flows.append((str(value), self.src(ln)))
        self.emit(Goto(str(value), src))
        return True

    def _jump(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        self.jumps.append((self.emit(None), str(value), self.src(ln)))
        return True

    def _handoff(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        self.emit(Handoff(str(value or "default"), src))
        return True

    def _end(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        if value not in (None, True, "flow", "conversation"):
            self.err(ln, "end: expected flow or conversation")
        self.emit(End("conversation" if value == "conversation" else "flow", src))
        return True

    def _retry(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        self.refs.slots.append((str(value), self.src(ln)))
        self.emit(Retry(str(value), src))
        return True

    def _set(self, step: LDict, value: Any, ln: int, src: Src) -> bool:
        self.refs.slots.append((str(value), self.src(ln)))
        tmpl = self.template(step.get("value", ""), step.line_of("value"))
        self.emit(SetSlot(str(value), tmpl, src))
        return False

    # -- the whole flow ------------------------------------------------------------------
    def side_block(self, steps: LList | None, default: str, src: Src) -> int:
        """Compile an on_error/on_fail block after the main program; it ends the flow unless
        it jumps elsewhere."""
        start = len(self.ops)
        if steps is None:
            self.emit(Say((Template(default),), (), src))
            self.emit(End("flow", src))
        elif not self.block(steps, steps.line if isinstance(steps, LList) else src.line):
            self.emit(End("flow", src))
        return start

    def finish(self) -> tuple[Op, ...]:
        while self.deferred:
            patch, steps, src = self.deferred.pop(0)
            patch(self.side_block(steps, DEFAULT_ON_ERROR, src))
        for at, label, src in self.jumps:
            if label not in self.labels:
                self.err(src.line, f"unknown step {label!r} in flow {self.flow!r}")
            self.ops[at] = Jump(self.labels.get(label, len(self.ops) - 1), src)
        targets = {label for _, label, _ in self.jumps}
        for sid, src in self.after_terminal:
            if sid is None or sid not in targets:
                self.err(src.line, f"unreachable step in flow {self.flow!r}")
        return tuple(op if op is not None else End("flow", Src(self.file, 0)) for op in self.ops)
