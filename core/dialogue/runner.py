"""The flow runner: the `core.ports.Dialogue` the turn runner calls once per turn."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import structlog

from core.dialogue.interpreter import RESUME, Interpreter
from core.dialogue.model import Ask, Bot, Flow, SlotSpec
from core.dialogue.policy import Choice, choose
from core.entities import EntityExtractor, extract_off_loop
from core.entities.offloop import BUDGET
from core.models import Button, Inbound
from core.outcomes import MISSED_KEY
from core.ports import Actions, Entity, HandoffTarget, NluResult, TurnOutcome
from core.session import Frame, Session

log = structlog.get_logger(__name__)

HANDBACK = "/bot"
_MISSING = object()


class FlowRunner:
    """Runs the loaded flows. `threshold`, `margin` and `handoff_after` override the flow
    files' policy when given (None: the policy's value); `replace` swaps in reloaded flows.
    `extract_budget`: seconds a turn waits for the entities it extracts itself."""

    def __init__(
        self,
        bot: Bot,
        actions: Actions,
        handoff: HandoffTarget | None = None,
        extractor: EntityExtractor | None = None,
        threshold: float | Callable[[], float] | None = None,
        margin: float | None = None,
        handoff_after: int | None = None,
        rng: random.Random | None = None,
        extract_budget: float = BUDGET,
    ):
        self._bot = bot
        self._actions = actions
        self._handoff = handoff
        self._extractor = extractor
        self._threshold = threshold
        self._margin = margin
        self._handoff_after = handoff_after
        self._rng = rng or random.Random()
        self._extract_budget = extract_budget

    @property
    def bot(self) -> Bot:
        return self._bot

    def use_threshold(self, threshold: float | Callable[[], float] | None) -> None:
        """The confidence threshold: a number, or a function read each turn (e.g. the intent
        model's own threshold, known once the model has loaded); None: the flows' policy."""
        self._threshold = threshold

    def replace(self, bot: Bot, extractor: EntityExtractor | None = None) -> None:
        self._bot = bot
        if extractor is not None:
            self._extractor = extractor

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        bot = self._bot
        interp = Interpreter(bot, session, inbound, self._actions, self._handoff, self._rng)
        text = inbound.text.strip()
        if inbound.payload == HANDBACK or text.lower() == HANDBACK:
            session.handoff, session.handoff_queue, session.fallbacks = False, None, 0
            interp.say(bot.policy.handback)
            return TurnOutcome(replies=interp.replies, intent="handback", confidence=1.0)
        if session.handoff:
            return TurnOutcome(replies=(), handoff=True)
        if inbound.payload is None and not text:
            interp.say(bot.policy.empty)
            return TurnOutcome(replies=interp.replies)
        intent, confidence = nlu.intent, nlu.confidence
        if inbound.payload and inbound.payload.startswith("/"):
            intent, confidence = inbound.payload[1:], 1.0
        entities = nlu.entities
        if not entities and not nlu.extracted and text and self._extractor is not None:
            # The parser did not look (a button press, a model still loading): look here, in
            # the text the model would have read (the extractor's `max_chars`), off the loop.
            entities = await extract_off_loop(self._extractor.extract, text, self._extract_budget)
        choice = choose(bot, nlu, intent, confidence, self._limits(bot))
        interp.intent, interp.confidence = choice.intent, choice.confidence
        missed = await self._respond(interp, choice, entities)
        interp.offer_resume()
        if session.stack and session.stack[-1].flow != RESUME:
            log.debug("flow.waiting", flow=session.stack[-1].flow)
        return TurnOutcome(
            replies=interp.replies,
            intent=choice.intent,
            confidence=choice.confidence,
            handoff=interp.handed_off,
            extra={"flow": session.stack[-1].flow if session.stack else None, MISSED_KEY: missed},
        )

    def _limits(self, bot: Bot) -> tuple[float, float]:
        p = bot.policy
        chosen = self._threshold() if callable(self._threshold) else self._threshold
        threshold = chosen if chosen is not None else p.threshold
        margin = self._margin if self._margin is not None else p.margin
        return threshold, margin

    async def _respond(
        self, interp: Interpreter, choice: Choice, entities: tuple[Entity, ...]
    ) -> str | None:
        """Runs the turn; says `clarified` or `fallback` when the message was not understood."""
        s, bot = interp.session, interp.bot
        top = s.stack[-1] if s.stack else None
        if top is not None and top.flow == RESUME:
            s.stack.pop()
            if choice.intent == "affirm" and s.paused:
                s.stack.append(s.paused.pop())
                s.stack[-1].asking = None
                await interp.run()
                return None
            if choice.intent == "deny":
                s.paused.clear()
                interp.say(bot.policy.resume_declined)
                return None
            top = None
        if top is not None and top.asking is not None:
            _realign(bot, s)
            top = s.stack[-1] if s.stack else None
        if top is not None and top.asking is not None:
            flow = bot.flows.get(top.flow)
            spec = flow.slots.get(top.asking) if flow else None
            answered = flow is not None and spec is not None
            if answered and await self._answer(interp, flow, top, spec, choice, entities):  # type: ignore[arg-type]
                return None
        return await self._route(interp, choice, entities)

    async def _answer(
        self,
        interp: Interpreter,
        flow: Flow,
        frame: Frame,
        spec: SlotSpec,
        choice: Choice,
        entities: tuple[Entity, ...],
    ) -> bool:
        """Take the message as the answer to the flow's question; False when it is another
        request instead (the flow is interrupted)."""
        payload = interp.inbound.payload or ""
        answer = interp.inbound.text.strip() or ("" if payload.startswith("/") else payload)
        value = _slot_value(spec, choice, entities, answer)
        interrupt = self._interrupts(interp, choice, flow, spec.free_text)
        if interrupt and (spec.free_text or value is _MISSING):
            return False
        if value is not _MISSING and _valid(spec, value, interp, frame):
            frame.slots[spec.name] = value
            interp.session.slots[spec.name] = value
            frame.asking = None
            interp.session.fallbacks = 0
            await interp.run()
            return True
        if not interp.failed(flow, frame, spec.name) and spec.invalid:
            interp.say(spec.invalid, frame)
        await interp.run()
        return True

    def _interrupts(self, interp: Interpreter, choice: Choice, flow: Flow, free_text: bool) -> bool:
        """Another request instead of an answer? While a free-text answer is expected, only a
        global intent, or another flow's intent at very high confidence, interrupts."""
        intent = choice.intent
        if intent is None or not choice.confident or intent in flow.intents:
            return False
        if intent in interp.bot.policy.global_intents:
            return True
        if intent not in interp.bot.triggers:
            return False
        threshold = self._limits(interp.bot)[0]
        return not free_text or choice.confidence >= threshold + (1 - threshold) / 2

    async def _route(
        self, interp: Interpreter, choice: Choice, entities: tuple[Entity, ...]
    ) -> str | None:
        s, bot = interp.session, interp.bot
        flow_name = bot.triggers.get(choice.intent or "") if choice.confident else None
        if flow_name is None and choice.confident and choice.intent in bot.intents:
            interp.say(bot.policy.idle)  # understood (a yes or no), but nothing is pending
            return None
        if flow_name is None:
            s.fallbacks += 1
            if s.fallbacks >= (self._handoff_after or bot.policy.handoff_after):
                await interp.handoff("fallback")
                return "fallback"
            missed = "clarified" if choice.clarify else "fallback"
            if choice.clarify:
                buttons = tuple(
                    Button(label=bot.policy.titles.get(i, bot.flows[bot.triggers[i]].title),
                           payload=f"/{i}")
                    for i in choice.clarify
                )  # fmt: skip
                interp.say(bot.policy.clarify, None, buttons)
            else:
                interp.say(bot.policy.fallback)
            if s.stack and s.stack[-1].asking:
                await interp.run()  # repeat the pending question
            return missed
        s.fallbacks = 0
        if s.stack:
            current = s.stack.pop()
            cur_flow = bot.flows.get(current.flow)
            keep = cur_flow is not None and cur_flow.resumable and current.flow != flow_name
            if keep and choice.intent not in ("cancel",):
                s.paused = [*s.paused[-2:], current]
        flow = bot.flows[flow_name]
        interp.start(flow, _prefill(flow, entities))
        await interp.run()
        return None


def _realign(bot: Bot, session: Session) -> None:
    """After a reload the waiting frame's step may point elsewhere: find the question for the
    slot it waits on again, or drop the frame when the flow no longer asks it."""
    frame = session.stack[-1]
    flow = bot.flows.get(frame.flow)
    if flow is None:
        session.stack.pop()
        return
    here = flow.program[frame.step] if frame.step < len(flow.program) else None
    if isinstance(here, Ask) and here.slot == frame.asking:
        return
    at = next(
        (i for i, op in enumerate(flow.program) if isinstance(op, Ask) and op.slot == frame.asking),
        None,
    )
    if at is None:
        session.stack.pop()
    else:
        frame.step = at


def _slot_value(spec: SlotSpec, choice: Choice, entities: tuple[Entity, ...], text: str) -> Any:
    if spec.entity is not None:
        return next((e.value for e in entities if e.type == spec.entity), _MISSING)
    if spec.intents:
        return spec.intents.get(choice.intent or "", _MISSING) if choice.confident else _MISSING
    return text if text else _MISSING


def _valid(spec: SlotSpec, value: Any, interp: Interpreter, frame: Frame) -> bool:
    if spec.validate is None:
        return True
    return spec.validate.test({**interp.context(frame), "value": value})


def _prefill(flow: Flow, entities: tuple[Entity, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for spec in flow.slots.values():
        if spec.entity is None:
            continue
        value = next((e.value for e in entities if e.type == spec.entity), _MISSING)
        ok = spec.validate is None or spec.validate.test({"value": value})
        if value is not _MISSING and ok:
            found[spec.name] = value
    return found
