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
    plausible: tuple[str, ...] = ()
    """Every intent that starts a flow, is not small talk and scored above the clarification
    floor, best first, sure or not: what an order number in the message may be for."""


def choose(
    bot: Bot,
    nlu: NluResult,
    intent: str | None,
    confidence: float,
    limits: tuple[float, float],
) -> Choice:
    """`intent`/`confidence` are the model's, or a pressed button's (confidence 1)."""
    threshold, margin = limits
    p = bot.policy
    floor = max(CLARIFY_FLOOR, p.clarify_floor)
    # Only plausible intents are offered, and never small talk: a question is never "just
    # saying hi". When none is plausible the bot says what it can do instead.
    ranked = [
        s
        for s in nlu.ranking
        if s.intent in bot.triggers and s.intent not in p.small_talk and s.confidence >= floor
    ]
    plausible = tuple(s.intent for s in ranked)
    options = plausible[: p.clarify_top]
    if intent is not None and intent != "out_of_scope" and confidence >= 1.0:
        return Choice(intent, confidence, True, plausible=plausible)
    if intent is None or intent == "out_of_scope":
        return Choice(intent, confidence, False, (), plausible)
    if confidence < threshold:
        return Choice(intent, confidence, False, options, plausible)
    scores = sorted((s.confidence for s in nlu.ranking), reverse=True)
    if (
        len(scores) > 1
        and scores[0] - scores[1] < margin
        and intent in bot.triggers
        and len(options) > 1
    ):
        return Choice(intent, confidence, False, options, plausible)
    return Choice(intent, confidence, True, plausible=plausible)
