"""Runs a flow's program from where the conversation stands until it waits, ends or hands off."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from typing import Any

import structlog

from core.dialogue.model import (
    Ask,
    Bot,
    Branch,
    ButtonSpec,
    Call,
    End,
    Flow,
    Goto,
    Handoff,
    Jump,
    Retry,
    Say,
    SetSlot,
)
from core.dialogue.templates import Template
from core.errors import ActionRefused
from core.models import Button, Inbound, Outbound
from core.ports import Actions, HandoffRecord, HandoffTarget
from core.redact import redact
from core.session import FAILED_ACTIONS_KEPT, FailedAction, Frame, Session

log = structlog.get_logger(__name__)

RESUME = "__resume__"
MAX_OPS = 200
"""A flow that runs this many operations in one turn is looping; it is stopped."""


class Interpreter:
    """Interprets the flows' compiled programs for one turn: runs operations from where the
    session stands, building the replies and moving through flows, until it waits, ends or hands
    off. The flow runner makes one per turn and decides where it starts."""

    def __init__(
        self,
        bot: Bot,
        session: Session,
        inbound: Inbound,
        actions: Actions,
        handoff_target: HandoffTarget | None,
        rng: random.Random,
    ):
        self.bot = bot
        self.session = session
        self.inbound = inbound
        self.actions = actions
        self.handoff_target = handoff_target
        self.rng = rng
        self.replies: list[Outbound] = []
        self.intent: str | None = None
        self.confidence: float | None = None
        self.handed_off = False
        self.missed = False
        """The turn did not move the conversation on (a miss, a wrong answer)."""
        self.miss_kind: str | None = None
        """`clarified` or `fallback` when the message was not understood (for the metrics)."""
        self.completed: list[str] = []
        """Flows that ran to their end (or their own `end:`) in this turn, in order."""
        self._calls = 0

    # -- replies -------------------------------------------------------------------------
    def context(self, frame: Frame | None) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            k: v for k, v in (frame.vars if frame else {}).items() if not k.startswith("_")
        }
        ctx["slots"] = {**self.session.slots, **(frame.slots if frame else {})}
        ctx["user"] = self.inbound.text
        ctx["intent"] = self.intent
        flow = self.bot.flows.get(frame.flow) if frame else None
        ctx["flow"] = flow.title if flow else ""
        return ctx

    def say(
        self,
        texts: tuple[Template, ...],
        frame: Frame | None = None,
        buttons: tuple[ButtonSpec, ...] | tuple[Button, ...] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        ctx = {**self.context(frame), **(extra or {})}
        text = self.rng.choice(texts).render(ctx) if texts else ""
        made = tuple(b if isinstance(b, Button) else Button(label=b.label, payload=b.payload)
                     for b in buttons)  # fmt: skip
        self.replies.append(Outbound(conversation=self.inbound.conversation, text=text,
                                     buttons=made))  # fmt: skip

    def render(self, texts: tuple[Template, ...]) -> Outbound:
        """A reply from policy texts, not yet sent (to put before the turn's other replies)."""
        text = self.rng.choice(texts).render(self.context(None)) if texts else ""
        return Outbound(conversation=self.inbound.conversation, text=text)

    def tell(self, text: str) -> None:
        """A reply that is not a template of the flows (a limit's explanation)."""
        self.replies.append(Outbound(conversation=self.inbound.conversation, text=text))

    # -- flows ---------------------------------------------------------------------------
    def start(self, flow: Flow, slots: Mapping[str, Any] | None = None) -> Frame:
        frame = Frame(flow=flow.name, slots=dict(slots or {}))
        self.session.stack.append(frame)
        return frame

    async def run(self) -> None:
        """Execute the top frame until it waits for an answer or the stack is empty."""
        for _ in range(MAX_OPS):
            if not self.session.stack or self.handed_off:
                return
            frame = self.session.stack[-1]
            flow = self.bot.flows.get(frame.flow)
            if flow is None or frame.step >= len(flow.program):
                self.session.stack.pop()
                if flow is not None:
                    self.completed.append(flow.name)
                continue
            if await self._op(flow, frame):
                return
        log.error("flow.looping", flow=self.session.stack[-1].flow if self.session.stack else "")
        self.session.stack.clear()

    async def _op(self, flow: Flow, frame: Frame) -> bool:
        """Run one operation; True when the flow now waits for the user."""
        op = flow.program[frame.step]
        frame.step += 1
        if isinstance(op, Say):
            self.say(op.texts, frame, op.buttons)
        elif isinstance(op, Ask):
            spec = flow.slots.get(op.slot) if op.slot is not None else None
            if spec is not None and spec.entity and op.slot not in frame.slots:
                heard = self.session.slots.get(spec.name)
                if heard is not None:  # said earlier in the conversation: never asked again
                    frame.slots[spec.name] = heard
            if op.slot is None:
                self.say(op.texts, frame, op.buttons)
            elif op.slot not in frame.slots:
                frame.step -= 1
                frame.asking = op.slot
                self.say(op.texts, frame, op.buttons)
                return True
        elif isinstance(op, Call):
            await self._call(op, frame)
        elif isinstance(op, Branch):
            if not op.cond.test(self.context(frame)):
                frame.step = op.else_pc
        elif isinstance(op, Jump):
            frame.step = op.pc
        elif isinstance(op, SetSlot):
            frame.slots[op.slot] = op.value.render(self.context(frame), fallback="")
            self.session.slots[op.slot] = frame.slots[op.slot]
        elif isinstance(op, Retry):
            self.retry(flow, frame, op.slot)
        elif isinstance(op, Goto):
            self.session.stack.pop()
            self.start(self.bot.flows[op.flow])
        elif isinstance(op, Handoff):
            await self.handoff(op.queue)
        elif isinstance(op, End):
            self.completed.append(flow.name)  # ended where its author said it ends
            self.end(op.scope)
        return False

    def key(self, part: str) -> str:
        """Idempotency key: the turn's identity plus the effect's place in the turn, so the
        same turn run again on the old session (its save failed) repeats no side effect."""
        return f"{self.inbound.conversation.key}:{self.inbound.event_id}:{part}"

    async def _call(self, op: Call, frame: Frame) -> None:
        ctx = self.context(frame)
        self._calls += 1
        try:
            args = _render_args(op.args, ctx)
            result = await self.actions.call(op.action, args, self.key(str(self._calls)))
        except ActionRefused as exc:
            # Nothing broke: a limit said no, and the customer is told why instead of the
            # flow's on_error apology; the flow ends, as nothing it does next has its result.
            log.info("action.refused", action=op.action, retry_after=round(exc.retry_after))
            self.tell(exc.reply)
            self.end("flow")
            return
        except Exception as exc:  # noqa: BLE001 - any failure runs the flow's on_error steps
            log.warning("action.failed", action=op.action, error=type(exc).__name__)
            failed = FailedAction(
                at=time.time(), flow=frame.flow, action=op.action, error=failure_text(exc)
            )
            kept = [*self.session.failed_actions, failed]
            self.session.failed_actions = kept[-FAILED_ACTIONS_KEPT:]
            frame.step = op.on_error
            return
        if op.bind:
            frame.vars[op.bind] = result

    def retry(self, flow: Flow, frame: Frame, slot: str) -> None:
        """Forget a wrong value and ask again, or give up when retries are spent."""
        frame.slots.pop(slot, None)
        self.session.slots.pop(slot, None)
        if self.failed(flow, frame, slot):
            return
        frame.step = next(
            (i for i, op in enumerate(flow.program) if isinstance(op, Ask) and op.slot == slot),
            len(flow.program),
        )

    def failed(self, flow: Flow, frame: Frame, slot: str) -> bool:
        """Count a wrong answer for `slot`; True (and on to the slot's `on_fail` steps) once
        its retries are spent. Counted per slot, across asking and backend checks."""
        spec = flow.slots[slot]
        tries = frame.vars.setdefault("_tries", {})
        tries[slot] = tries.get(slot, 0) + 1
        frame.retries = tries[slot]
        if tries[slot] <= spec.retries:
            return False
        tries[slot] = 0
        frame.asking = None
        frame.step = spec.on_fail if spec.on_fail is not None else len(flow.program)
        return True

    def end(self, scope: str) -> None:
        if self.session.stack:
            self.session.stack.pop()
        if scope == "conversation":
            self.session.stack.clear()
            self.session.paused.clear()

    async def handoff(self, queue: str) -> None:
        s = self.session
        frame = s.stack[-1] if s.stack else None
        slots = {**s.slots, **(frame.slots if frame else {})}
        transcript = [{"user": t.user, "intent": t.intent, "bot": t.bot} for t in s.history]
        transcript.append({"user": self.inbound.text, "intent": self.intent, "bot": []})
        record = HandoffRecord(
            conversation=s.key,
            channel=self.inbound.channel,
            queue=queue,
            intent=self.intent,
            confidence=self.confidence,
            slots=slots,
            transcript=transcript,
            at=time.time(),
            key=self.key("handoff"),
        )
        if self.handoff_target is not None:
            try:
                await self.handoff_target.notify(record)
            except ActionRefused as exc:
                # No person will see this request: the bot keeps the conversation and says
                # so, rather than going silent while nobody comes.
                log.info("handoff.refused", queue=queue, retry_after=round(exc.retry_after))
                self.tell(exc.reply)
                s.stack.clear()
                return
            except Exception as exc:  # noqa: BLE001 - the user is told either way
                log.error("handoff.notify_failed", error=type(exc).__name__)
        log.info("handoff", queue=queue, intent=self.intent, slots=sorted(slots))
        s.handoff, s.handoff_queue, s.told_waiting = True, queue, False
        self.say(self.bot.policy.handoff, frame)
        s.stack.clear()
        s.paused.clear()
        self.handed_off = True

    def offer_resume(self) -> None:
        if self.session.stack or not self.session.paused or self.handed_off:
            return
        paused = self.session.paused[-1]
        flow = self.bot.flows.get(paused.flow)
        if flow is None:
            self.session.paused.pop()
            return
        self.session.stack.append(Frame(flow=RESUME, asking="resume"))
        yes_no = (Button(label="Yes", payload="/affirm"), Button(label="No", payload="/deny"))
        self.say(self.bot.policy.resume, None, yes_no, {"flow": flow.title})


_QUERY = re.compile(r"\?[^\s:]*")
FAILURE_TEXT_MAX = 200


def failure_text(exc: BaseException) -> str:
    """What broke, for a person: the error's kind and message, with query strings (where a key
    or an address may ride) cut and personal data redacted, short."""
    said = _QUERY.sub("?…", str(exc))
    text = f"{type(exc).__name__}: {redact(said)}" if said else type(exc).__name__
    return text[:FAILURE_TEXT_MAX]


def _render_args(args: Any, ctx: Mapping[str, Any]) -> Any:
    if isinstance(args, dict):
        return {k: _render_args(v, ctx) for k, v in args.items()}
    if isinstance(args, list):
        return [_render_args(v, ctx) for v in args]
    if isinstance(args, Template):
        return args.value(ctx)
    return args
