"""Deciding what the user meant: confidence threshold, ambiguity margin, clarifying options."""

from __future__ import annotations

from dataclasses import dataclass

from core.dialogue.model import Bot
from core.ports import NluResult

CLARIFY_FLOOR = 0.05
"""Intents scored below this are never offered as a clarifying option."""


@dataclass(frozen=True, slots=True)
class Choice:
    """What the policy made of the intent model's answer: the intent to act on, whether the bot
    is confident of it, and what to ask when it is not."""

    intent: str | None
    confidence: float
    confident: bool
    clarify: tuple[str, ...] = ()
    """Intents to offer as buttons when the bot is not sure."""


def choose(
    bot: Bot,
    nlu: NluResult,
    intent: str | None,
    confidence: float,
    limits: tuple[float, float],
) -> Choice:
    """`intent`/`confidence` are the model's, or a pressed button's (confidence 1)."""
    threshold, margin = limits
    if intent is not None and intent != "out_of_scope" and confidence >= 1.0:
        return Choice(intent, confidence, True)
    p = bot.policy
    floor = max(CLARIFY_FLOOR, p.clarify_floor)
    # Only plausible intents are offered, and never small talk: a question is never "just
    # saying hi". When none is plausible the bot says what it can do instead.
    ranked = [
        s
        for s in nlu.ranking
        if s.intent in bot.triggers and s.intent not in p.small_talk and s.confidence >= floor
    ]
    options = tuple(s.intent for s in ranked[: p.clarify_top])
    if intent is None or intent == "out_of_scope":
        return Choice(intent, confidence, False, ())
    if confidence < threshold:
        return Choice(intent, confidence, False, options)
    scores = sorted((s.confidence for s in nlu.ranking), reverse=True)
    if (
        len(scores) > 1
        and scores[0] - scores[1] < margin
        and intent in bot.triggers
        and len(options) > 1
    ):
        return Choice(intent, confidence, False, options)
    return Choice(intent, confidence, True)
