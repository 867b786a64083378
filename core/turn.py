"""The seams where the intent model and the dialogue plug into the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.models import Inbound, Outbound
from core.session import Session


@dataclass(frozen=True, slots=True)
class IntentScore:
    intent: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Entity:
    """A value found in the text: `type` is the extractor's name (email, phone, order_id...)."""

    type: str
    value: Any
    text: str
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class NluResult:
    text: str
    intent: str | None
    confidence: float
    ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    extracted: bool = False
    """True when the parser already looked for entities (in the text it read): no entities
    then means none, and the dialogue does not look again."""

    @classmethod
    def empty(cls, text: str = "") -> NluResult:
        return cls(text=text, intent=None, confidence=0.0)


class IntentParser(Protocol):
    """The intent model as the engine sees it. `parse` never raises on odd text."""

    async def parse(self, text: str) -> NluResult: ...

    def ready(self) -> bool: ...


@dataclass(slots=True)
class TurnOutcome:
    replies: Sequence[Outbound] = ()
    intent: str | None = None
    confidence: float | None = None
    handoff: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Dialogue(Protocol):
    """The flow runner as the engine sees it: it reads and updates `session` in place and says
    what to answer."""

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome: ...
