"""The flow runner: the `core.ports.Dialogue` the turn runner calls once per turn."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from core.backlog import EditPolicy
from core.dialogue.escape import escapes, stops
from core.dialogue.interpreter import RESUME, Interpreter
from core.dialogue.language import Detect, language_detector
from core.dialogue.model import Ask, Bot, Flow, SlotSpec
from core.dialogue.mood import frustrated
from core.dialogue.policy import Choice, choose
from core.entities import EntityExtractor, extract_off_loop
from core.entities.offloop import BUDGET
from core.models import Button, Inbound
from core.outcomes import ASKED_FEEDBACK_KEY, FEEDBACK_KEY, FLOW_END_KEY, MISSED_KEY
from core.ports import Actions, Entity, FeedbackLog, HandoffTarget, NluResult, TurnOutcome
from core.session import Frame, Session

log = structlog.get_logger(__name__)

HANDBACK = "/bot"
FEEDBACK = {"/feedback:up": "up", "/feedback:down": "down"}
"""The payloads of the "Did that help?" buttons."""
_MISSING = object()
HEARD_ALWAYS = ("email", "phone")
READ_CHARS = 2000
"""Characters of a message the dialogue's own heuristics read (the model reads fewer)."""
"""Entity types kept for a person (the handoff record) even when no flow asks for them."""
_LETTERS = re.compile(r"[^\W\d_]{2,}")
_SPLIT = re.compile(
    r"(?i)(?:[?!.;]+\s+|\s*[?!]+\s*(?=\w)|,?\s+(?:and\s+also|and\s+then|also|plus|and|but)\s+)"
)
"""Where a message holding two requests is cut: after a question or sentence, or at "and"."""
Parse = Callable[[str], Awaitable[NluResult]]
_YES = frozenset(
    ["yes", "y", "yeah", "yea", "yep", "yup", "sure", "ok", "okay", "k", "please", "ya",
     "yes please", "sure thing", "of course", "go ahead", "do it", "sounds good", "correct",
     "right", "exactly", "absolutely", "definitely"]
)  # fmt: skip
_NO = frozenset(["no", "n", "nope", "nah", "no thanks", "no thank you", "not now", "no way"])
"""The commonest answers to a yes/no question, read as such whatever the model scores them:
a bare "yes" is too short for the model to be sure, and it is the answer asked for."""


class FlowRunner:
    """Runs the loaded flows. `threshold`, `margin` and `handoff_after` override the flow
    files' policy when given (None: the policy's value); `replace` swaps in reloaded flows.
    `extract_budget`: seconds a turn waits for the entities it extracts itself.
    `feedback_every`: seconds between two "Did that help?" in one conversation (the policy's
    `feedback:` says after which flows; None: never asked)."""

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
        feedback_every: float | None = 86_400.0,
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
        self._parse: Parse | None = None
        self._detect: Detect | None = None
        self._detect_for: tuple[str, ...] = ()
        self._feedback_every = feedback_every
        self._feedback_log: FeedbackLog | None = None

    def use_feedback_log(self, log: FeedbackLog | None) -> None:
        """Where "Did that help?" questions are remembered past a session's end (the
        conversation store), so a customer back the next hour is not asked again."""
        self._feedback_log = log

    def use_parser(self, parse: Parse | None) -> None:
        """The intent model, to read each part of a message that holds two requests."""
        self._parse = parse

    @property
    def bot(self) -> Bot:
        return self._bot

    @property
    def edits(self) -> EditPolicy:
        """What an edited message does: the flows' `policy.edits` (`core.ports.EditRule`)."""
        return self._bot.policy.edits

    def menu(self) -> tuple[Button, ...]:
        """What the bot can do, as buttons (the policy's `menu`): a web chat's welcome."""
        return _buttons(self._bot, self._bot.policy.menu)

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
        turn = Interpreter(bot, session, inbound, self._actions, self._handoff, self._rng)
        text = _head(inbound.text).strip()
        if inbound.payload == HANDBACK or text.lower() == HANDBACK:
            session.handoff, session.handoff_queue, session.fallbacks = False, None, 0
            turn.say(bot.policy.handback)
            return TurnOutcome(replies=turn.replies, intent="handback", confidence=1.0)
        if inbound.payload in FEEDBACK:
            return self._feedback_given(turn, FEEDBACK[inbound.payload])
        if session.handoff:
            # Every message is answered: once after the handoff the customer is told a
            # person will reply; after that the conversation is the person's.
            if not session.told_waiting:
                session.told_waiting = True
                turn.say(bot.policy.waiting)
            return TurnOutcome(replies=turn.replies, handoff=True)
        if inbound.payload is None and not text:
            turn.say(bot.policy.empty)
            return TurnOutcome(replies=turn.replies)
        intent, confidence = nlu.intent, nlu.confidence
        if inbound.payload and inbound.payload.startswith("/"):
            intent, confidence = inbound.payload[1:], 1.0
        elif _yes_no(text) and _yes_no(text) in bot.intents:
            intent, confidence = _yes_no(text), 1.0
        entities = nlu.entities
        if not entities and not nlu.extracted and text and self._extractor is not None:
            # The parser did not look (a button press, a model still loading): look here, in
            # the text the model would have read (the extractor's `max_chars`), off the loop.
            entities = await extract_off_loop(self._extractor.extract, text, self._extract_budget)
        choice = choose(bot, nlu, intent, confidence, self._limits(bot))
        before = {f.flow for f in (*session.stack, *session.paused) if f.flow != RESUME}
        turn.intent, turn.confidence = choice.intent, choice.confidence
        _hear(bot, session, entities)
        angry = inbound.payload is None and frustrated(text)
        session.frustration = session.frustration + 1 if angry else 0
        if inbound.payload is None and await self._foreign(turn, choice, text):
            return TurnOutcome(replies=turn.replies, intent="other_language", confidence=0.0)
        if not await self._several(turn, choice, text, entities):
            await self._respond(turn, choice, entities)
        if angry and not turn.handed_off:
            if session.frustration >= 2 or turn.missed:
                await turn.handoff("support")
            else:
                turn.replies.insert(0, turn.render(bot.policy.apology))
        turn.offer_resume()
        if session.stack and session.stack[-1].flow != RESUME:
            log.debug("flow.waiting", flow=session.stack[-1].flow)
        ended = _flow_end(turn, before)
        asked = await self._ask_feedback(turn, ended)
        return TurnOutcome(
            replies=turn.replies,
            intent=choice.intent,
            confidence=choice.confidence,
            handoff=turn.handed_off,
            extra={
                "flow": session.stack[-1].flow if session.stack else None,
                MISSED_KEY: turn.miss_kind,
                FLOW_END_KEY: ended,
                ASKED_FEEDBACK_KEY: asked,
            },
        )

    def _feedback_given(self, turn: Interpreter, value: str) -> TurnOutcome:
        """A 👍 or 👎: kept against the turn that asked, once. A press for a question no
        longer open (answered already, or its session ended) is thanked and not kept."""
        s, fb = turn.session, turn.bot.policy.feedback
        about, s.feedback_turn = s.feedback_turn, None
        if fb is not None:
            turn.say(fb.thanks)
        extra = {FEEDBACK_KEY: (value, about)} if about is not None else {}
        return TurnOutcome(replies=turn.replies, intent="feedback", confidence=1.0, extra=extra)

    async def _ask_feedback(self, turn: Interpreter, ended: tuple[str, str] | None) -> bool:
        """ "Did that help?" after a flow the policy names completed, when nothing else is
        pending and the conversation was not asked within `feedback_every`."""
        s, fb = turn.session, turn.bot.policy.feedback
        if fb is None or self._feedback_every is None or ended is None:
            return False
        if ended != ("completed", ended[1]) or ended[1] not in fb.after:
            return False
        if turn.handed_off or s.stack or turn.missed:
            return False
        now = time.time()
        if now - s.feedback_asked_at < self._feedback_every:
            return False
        if self._feedback_log is not None and self._feedback_every > 0:
            try:
                if await self._feedback_log.asked_since(s.key, now - self._feedback_every):
                    return False
            except Exception as exc:  # noqa: BLE001 - not asking is the safe side
                log.warning("feedback.log_unavailable", error=repr(exc))
                return False
        up = Button(label=fb.up, payload="/feedback:up")
        down = Button(label=fb.down, payload="/feedback:down")
        turn.say(fb.ask, None, (up, down))
        s.feedback_asked_at, s.feedback_turn = now, turn.inbound.dedupe_key
        return True

    async def _foreign(self, turn: Interpreter, choice: Choice, text: str) -> bool:
        """A message in a language the bot does not speak: say so in that language and offer
        a person. Only where the flows have a message for that language."""
        p = turn.bot.policy
        if not p.other_language or (choice.confident and choice.confidence >= 0.98):
            return False
        codes = tuple(sorted({*p.languages, *p.other_language}))
        if self._detect is None or self._detect_for != codes:
            self._detect, self._detect_for = language_detector(codes), codes
        try:
            lang = await asyncio.to_thread(self._detect, text)
        except Exception:
            log.exception("language.detect_failed")
            return False
        if lang is None or lang in p.languages or lang not in p.other_language:
            return False
        log.info("language.other", language=lang)
        label = p.other_language_button.get(lang, p.titles.get("human", "Talk to a person"))
        human = (Button(label=label, payload="/human"),) if "human" in turn.bot.triggers else ()
        turn.say(p.other_language[lang], None, human)
        return True

    async def _several(
        self, turn: Interpreter, choice: Choice, text: str, entities: tuple[Entity, ...]
    ) -> bool:
        """Two requests in one message ("where is A1B2C3, and how much is express?"): each
        part read on its own; the ones that need nothing from the customer are answered
        first, the one that asks a question last, a third comes back as a paused flow."""
        s, bot = turn.session, turn.bot
        if self._parse is None or turn.inbound.payload is not None:
            return False
        if s.stack and (s.stack[-1].asking is not None or s.stack[-1].flow == RESUME):
            return False
        parts = [p for p in _SPLIT.split(text) if len(_LETTERS.findall(p)) >= 2]
        if len(parts) < 2:
            return False
        threshold = self._limits(bot)[0]
        found: list[str] = []
        for part in parts[:4]:
            result = await self._parse(part)
            name = result.intent
            if (
                name is None
                or result.confidence < threshold
                or name not in bot.triggers
                or name in bot.policy.small_talk
                or name in bot.policy.global_intents
                or bot.triggers[name] in found
            ):
                continue
            found.append(bot.triggers[name])
        if len(found) < 2:
            return False
        log.info("turn.several", flows=found)
        heard = _entity_slots(bot, s)
        quick = [f for f in found if not _needs_input(bot.flows[f], heard)]
        slow = [f for f in found if f not in quick]
        s.fallbacks = 0
        if s.stack:
            s.stack.clear()
        turn.say(bot.policy.both)
        for name in slow[1:]:
            s.paused = [*s.paused[-2:], Frame(flow=name)]
        for name in [*quick, *slow[:1]]:
            flow = bot.flows[name]
            turn.start(flow, _prefill(flow, entities, heard))
            await turn.run()
            if s.stack or turn.handed_off:
                break
        return True

    def _limits(self, bot: Bot) -> tuple[float, float]:
        p = bot.policy
        chosen = self._threshold() if callable(self._threshold) else self._threshold
        threshold = chosen if chosen is not None else p.threshold
        margin = self._margin if self._margin is not None else p.margin
        return threshold, margin

    async def _respond(
        self, turn: Interpreter, choice: Choice, entities: tuple[Entity, ...]
    ) -> None:
        s, bot = turn.session, turn.bot
        top = s.stack[-1] if s.stack else None
        if top is not None and top.flow == RESUME:
            s.stack.pop()
            if choice.intent == "affirm" and s.paused:
                s.stack.append(s.paused.pop())
                s.stack[-1].asking = None
                await turn.run()
                return
            if choice.intent == "deny":
                s.paused.clear()
                turn.say(bot.policy.resume_declined)
                return
            if s.paused and _answers(bot, s.paused[-1], entities):
                s.stack.append(s.paused.pop())  # the answer to the paused flow's question
                top = s.stack[-1]
            else:
                top = None
        if top is not None and top.asking is not None:
            _realign(bot, s)
            top = s.stack[-1] if s.stack else None
        if top is not None and top.asking is not None:
            flow = bot.flows.get(top.flow)
            spec = flow.slots.get(top.asking) if flow else None
            answered = flow is not None and spec is not None
            if answered and await self._answer(turn, flow, top, spec, choice, entities):  # type: ignore[arg-type]
                return
        await self._route(turn, choice, entities)

    async def _answer(
        self,
        turn: Interpreter,
        flow: Flow,
        frame: Frame,
        spec: SlotSpec,
        choice: Choice,
        entities: tuple[Entity, ...],
    ) -> bool:
        """Take the message as the answer to the flow's question; False when it is another
        request instead (the flow is interrupted)."""
        payload = turn.inbound.payload or ""
        answer = turn.inbound.text.strip() or ("" if payload.startswith("/") else payload)
        value = _slot_value(spec, choice, entities, answer)
        interrupt = self._interrupts(turn, choice, flow, spec.free_text)
        if interrupt and (spec.free_text or value is _MISSING):
            return False
        head = _head(turn.inbound.text)
        if (
            (value is _MISSING or (spec.free_text and stops(head)))
            and not frustrated(head)
            and _gives_up(turn, choice)
        ):
            turn.end("flow")
            turn.say(turn.bot.policy.resume_declined)
            return True
        if value is not _MISSING and _valid(spec, value, turn, frame):
            frame.slots[spec.name] = value
            turn.session.slots[spec.name] = value
            frame.asking = None
            turn.session.fallbacks = 0
            await turn.run()
            return True
        turn.missed = True
        if not turn.failed(flow, frame, spec.name) and spec.invalid:
            turn.say(spec.invalid, frame)
        await turn.run()
        return True

    def _interrupts(self, turn: Interpreter, choice: Choice, flow: Flow, free_text: bool) -> bool:
        """Another request instead of an answer? While a free-text answer is expected (a
        reason, an address) the message is the answer unless it is a way out: a request for
        a person, or a stop ("nah forget it"); another flow's intent never takes it, as a
        reason ("the zip broke") often reads like another request."""
        intent = choice.intent
        if intent is None or not choice.confident or intent in flow.intents:
            return False
        if free_text:
            return escapes(turn.bot, intent, _head(turn.inbound.text))
        return intent in turn.bot.policy.global_intents or intent in turn.bot.triggers

    async def _route(self, turn: Interpreter, choice: Choice, entities: tuple[Entity, ...]) -> None:
        s, bot = turn.session, turn.bot
        flow_name = bot.triggers.get(choice.intent or "") if choice.confident else None
        by_entity = _entity_flow(bot, choice, entities)
        if by_entity is not None and (flow_name is None or choice.intent in bot.policy.small_talk):
            flow_name = bot.triggers[by_entity]  # an order number alone: look it up
            turn.intent = by_entity
        if flow_name is None and choice.confident and choice.intent in bot.intents:
            turn.say(bot.policy.idle)  # understood (a yes or no), but nothing is pending
            return
        if flow_name is None:
            if choice.clarify:
                # Not a miss: the customer said something plausible and is asked which.
                buttons = _buttons(bot, choice.clarify)
                turn.say(bot.policy.clarify, None, buttons)
                turn.miss_kind = "clarified"
            else:
                turn.miss_kind = "fallback"
                turn.missed = _worded(_head(turn.inbound.text))
                s.fallbacks += turn.missed
                if s.fallbacks >= (self._handoff_after or bot.policy.handoff_after):
                    await turn.handoff("fallback")
                    return
                turn.say(bot.policy.fallback, None, _buttons(bot, bot.policy.menu))
            if s.stack and s.stack[-1].asking:
                await turn.run()  # repeat the pending question
            return
        s.fallbacks = 0
        if s.stack:
            current = s.stack.pop()
            cur_flow = bot.flows.get(current.flow)
            keep = cur_flow is not None and cur_flow.resumable and current.flow != flow_name
            if keep and choice.intent not in ("cancel",):
                s.paused = [*s.paused[-2:], current]
        flow = bot.flows[flow_name]
        turn.start(flow, _prefill(flow, entities, _entity_slots(bot, s)))
        await turn.run()


def _flow_end(turn: Interpreter, before: set[str]) -> tuple[str, str] | None:
    """(`completed` or `abandoned`, the flow) when a flow ended in this turn: the last one run
    to its end, else one that was waiting before the turn and is gone (given up, cancelled,
    replaced by another request, handed off)."""
    if turn.completed:
        return "completed", turn.completed[-1]
    s = turn.session
    left = {f.flow for f in (*s.stack, *s.paused)}
    gone = sorted(before - left)
    return ("abandoned", gone[0]) if gone else None


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


def _valid(spec: SlotSpec, value: Any, turn: Interpreter, frame: Frame) -> bool:
    if spec.validate is None:
        return True
    return spec.validate.test({**turn.context(frame), "value": value})


def _prefill(
    flow: Flow, entities: tuple[Entity, ...], heard: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The flow's entity slots from this message, else from what the conversation has heard."""
    found: dict[str, Any] = {}
    for spec in flow.slots.values():
        if spec.entity is None:
            continue
        value = next((e.value for e in entities if e.type == spec.entity), _MISSING)
        if value is _MISSING and heard and spec.name in heard:
            value = heard[spec.name]
        ok = spec.validate is None or spec.validate.test({"value": value})
        if value is not _MISSING and ok:
            found[spec.name] = value
    return found


def _hear(bot: Bot, session: Session, entities: tuple[Entity, ...]) -> None:
    """Every id, e-mail or phone number a message brings fills its slot, whatever the flow:
    a flow never asks for what the customer already said, and a person taking over sees it."""
    for e in entities:
        names = {
            spec.name
            for flow in bot.flows.values()
            for spec in flow.slots.values()
            if spec.entity == e.type
        }
        if not names and e.type in HEARD_ALWAYS:
            names = {e.type}
        for name in names:
            session.slots[name] = e.value


def _entity_slots(bot: Bot, session: Session) -> dict[str, Any]:
    """The session's slots that hold an entity (never a free-text answer of an old flow)."""
    names = {
        spec.name for flow in bot.flows.values() for spec in flow.slots.values() if spec.entity
    }
    return {k: v for k, v in session.slots.items() if k in names}


def _needs_input(flow: Flow, heard: dict[str, Any]) -> bool:
    return any(
        isinstance(op, Ask) and op.slot is not None and op.slot not in heard for op in flow.program
    )


def _answers(bot: Bot, frame: Frame, entities: tuple[Entity, ...]) -> bool:
    flow = bot.flows.get(frame.flow)
    spec = flow.slots.get(frame.asking or "") if flow else None
    return (
        spec is not None
        and spec.entity is not None
        and any(e.type == spec.entity for e in entities)
    )


def _entity_flow(bot: Bot, choice: Choice, entities: tuple[Entity, ...]) -> str | None:
    """The intent an id starts when the message brings nothing clearer: the most plausible
    request whose flow takes that id ("cancel Z9Y8X7", "i want to return K4M5N6"), else the
    policy's `entity_flows` (a bare "K4M5N6" is looked up)."""
    types = {e.type for e in entities}
    for intent in choice.plausible:
        flow = bot.flows[bot.triggers[intent]]
        if any(spec.entity in types for spec in flow.slots.values()):
            return intent
    for e in entities:
        default = bot.policy.entity_flows.get(e.type)
        if default is not None and default in bot.triggers:
            return default
    return None


def _gives_up(turn: Interpreter, choice: Choice) -> bool:
    """ "nah forget it", "never mind" at a question: the cancel intent, or a no."""
    return choice.intent in ("cancel", "deny") and choice.confidence >= 0.5


def _head(text: str) -> str:
    """What the dialogue's own reading (mood, several requests, a worded miss) looks at: the
    start of a long message, as the intent model does, so a huge message costs no more."""
    return text[:READ_CHARS]


def _worded(text: str) -> bool:
    """A message with words in it: one emoji or a question mark is not a failed turn."""
    return len(_LETTERS.findall(text)) >= 1


def _buttons(bot: Bot, intents: tuple[str, ...]) -> tuple[Button, ...]:
    return tuple(
        Button(label=bot.policy.titles.get(i, bot.flows[bot.triggers[i]].title), payload=f"/{i}")
        for i in intents
        if i in bot.triggers
    )


def _yes_no(text: str) -> str | None:
    word = " ".join(_LETTERS.findall(text.casefold())) or text.strip().casefold()
    return "affirm" if word in _YES else "deny" if word in _NO else None
