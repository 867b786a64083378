"""The flows as typed, frozen objects: each flow's steps are compiled into a flat program of
operations, so a conversation's place in a flow is one index that survives a restart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.backlog import EditPolicy
from core.dialogue.templates import Condition, Template


@dataclass(frozen=True, slots=True)
class Src:
    """Where something was written in the flow files, for messages that point at it."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    """A button a `say` or `ask` step offers."""

    label: str
    payload: str
    """`/intent_name` for an intent, or the literal payload given in the flow."""


@dataclass(frozen=True, slots=True)
class Say:
    """Operation: send one of `texts` (picked at random) with its buttons, and go on."""

    texts: tuple[Template, ...]
    buttons: tuple[ButtonSpec, ...]
    src: Src


@dataclass(frozen=True, slots=True)
class Ask:
    """A question; with `slot` the flow waits for the answer, without it the flow goes on (the
    answer is routed by intent, e.g. buttons that start other flows)."""

    texts: tuple[Template, ...]
    buttons: tuple[ButtonSpec, ...]
    slot: str | None
    src: Src


@dataclass(frozen=True, slots=True)
class Call:
    """Operation: run an integration action with `args`, keep its answer as `bind`, and jump to
    `on_error` when it fails."""

    action: str
    args: dict[str, Any]
    """Values are `Template`s (or nested dicts/lists of them), rendered before the call."""
    bind: str | None
    on_error: int
    src: Src


@dataclass(frozen=True, slots=True)
class Branch:
    """Operation: go on when `cond` holds, else jump to `else_pc` (a flow's `if`)."""

    cond: Condition
    else_pc: int
    src: Src


@dataclass(frozen=True, slots=True)
class Jump:
    """Operation: continue at `pc` (the end of an `if`'s first branch, a label)."""

    pc: int
    src: Src


@dataclass(frozen=True, slots=True)
class Goto:
    """Operation: leave this flow and start `flow`."""

    flow: str
    src: Src


@dataclass(frozen=True, slots=True)
class Handoff:
    """Operation: hand the conversation to a person in `queue`."""

    queue: str
    src: Src


@dataclass(frozen=True, slots=True)
class End:
    """Operation: end this flow, or with `conversation` every flow, paused ones included."""

    scope: Literal["flow", "conversation"]
    src: Src


@dataclass(frozen=True, slots=True)
class Retry:
    """The slot's value was wrong after all (e.g. the backend knows no such order): forget it,
    count a failure and ask again, or run the slot's `on_fail` when retries are used up."""

    slot: str
    src: Src


@dataclass(frozen=True, slots=True)
class SetSlot:
    """Operation: set `slot` to the rendered `value`."""

    slot: str
    value: Template
    src: Src


Op = Say | Ask | Call | Branch | Jump | Goto | Handoff | End | Retry | SetSlot


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """A value a flow needs before its steps run: where it comes from (an entity, intents, free
    text), how it is checked, and how often it is asked again."""

    name: str
    entity: str | None
    intents: dict[str, Any]
    """Intent → value, e.g. {affirm: true, deny: false} for a yes/no question."""
    validate: Condition | None
    invalid: tuple[Template, ...]
    retries: int
    on_fail: int | None
    src: Src

    @property
    def free_text(self) -> bool:
        return self.entity is None and not self.intents


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow of the bot: what starts it, the slots it fills, and its compiled program."""

    name: str
    title: str
    intents: tuple[str, ...]
    slots: dict[str, SlotSpec]
    program: tuple[Op, ...]
    src: Src
    resumable: bool = True


@dataclass(frozen=True, slots=True)
class HttpActionSpec:
    """An HTTP action declared in YAML; every string is a template over the call's arguments
    (`args`) and the secrets it names (`env`, read from the environment at call time)."""

    name: str
    method: Template
    url: Template
    headers: dict[str, Template]
    json: Any
    secrets: tuple[str, ...]
    timeout: float
    retries: int
    cache_ttl: float
    src: Src


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """An entity the flow files declare by pattern; the entity extractor looks for it."""

    name: str
    pattern: str
    case: Literal["upper", "lower", "keep"]
    src: Src


@dataclass(frozen=True, slots=True)
class Policy:
    """How the bot behaves when it is unsure: the confidence threshold, clarifying questions,
    handoff after repeated fallbacks, and the texts of those answers."""

    threshold: float = 0.6
    margin: float = 0.1
    clarify_top: int = 3
    handoff_after: int = 3
    global_intents: tuple[str, ...] = ("help", "cancel", "human", "goodbye")
    fallback: tuple[Template, ...] = (Template.compile("Sorry, I didn't get that."),)
    clarify: tuple[Template, ...] = (Template.compile("Did you mean one of these?"),)
    empty: tuple[Template, ...] = (
        Template.compile("I didn't catch that. What can I help you with?"),
    )
    resume: tuple[Template, ...] = (Template.compile("Shall we get back to {{ flow }}?"),)
    handoff: tuple[Template, ...] = (Template.compile("I'm passing you to a person."),)
    handback: tuple[Template, ...] = (Template.compile("You're talking to the bot again."),)
    idle: tuple[Template, ...] = (Template.compile("Okay. What can I do for you?"),)
    resume_declined: tuple[Template, ...] = (Template.compile("Okay. What else can I do for you?"),)
    titles: dict[str, str] = field(default_factory=dict)
    """Intent → short button label for clarifying questions."""
    clarify_floor: float = 0.15
    """A (calibrated) confidence under which an intent is not plausible enough to offer."""
    small_talk: tuple[str, ...] = ()
    """Intents never offered as a clarifying option (a question is never "just saying hi"),
    and that give way to an id the message brings (`entity_flows`)."""
    menu: tuple[str, ...] = ()
    """Intents offered as buttons when nothing the customer said is plausible."""
    entity_flows: dict[str, str] = field(default_factory=dict)
    """Entity type → the intent a message bringing it (and nothing clearer) starts."""
    languages: tuple[str, ...] = ("en",)
    """ISO 639-1 codes of the languages the bot speaks."""
    other_language: dict[str, tuple[Template, ...]] = field(default_factory=dict)
    """Language code → what to say to a message in that language the bot does not speak."""
    other_language_button: dict[str, str] = field(default_factory=dict)
    """Language code → the label of the talk-to-a-person button offered with it."""
    waiting: tuple[Template, ...] = (
        Template.compile("A person from our team will answer you here as soon as they can."),
    )
    apology: tuple[Template, ...] = (Template.compile("Sorry about the trouble."),)
    """Said before the answer when the customer is clearly annoyed but the bot can help."""
    both: tuple[Template, ...] = (Template.compile("Let's take those one at a time."),)
    """Said before handling two requests of one message in turn."""
    edits: EditPolicy = "replace_unanswered"
    """What an edited message does (`core.backlog.EditPolicy`); deletes are never answered."""
    feedback: Feedback | None = None
    """"Did that help?" after the flows it names; None: never asked."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """The policy's `feedback:`: after one of the `after` flows completes, the customer is asked
    `ask` with two buttons (numbered where the channel has none); `thanks` answers the press."""

    after: frozenset[str]
    ask: tuple[Template, ...] = (Template.compile("Did that help?"),)
    up: str = "👍 Yes"
    down: str = "👎 No"
    thanks: tuple[Template, ...] = (Template.compile("Thanks for telling us!"),)


@dataclass(frozen=True, slots=True)
class Bot:
    """The whole bot as loaded from the flow files: flows, the intents that start them, actions,
    entities and the policy. The flow runner holds one and swaps it on reload."""

    flows: dict[str, Flow]
    triggers: dict[str, str]
    """Intent → the flow it starts."""
    intents: frozenset[str]
    actions: dict[str, HttpActionSpec]
    entities: dict[str, EntitySpec]
    policy: Policy
    files: tuple[str, ...]
