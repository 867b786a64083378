"""Telling a way out from an answer while a flow waits for free text: "nah forget it" at the
return reason stops the flow, "changed my mind" is the reason."""

from __future__ import annotations

import re

from core.dialogue.model import Bot, Handoff

_STOP = re.compile(
    r"(?i)\b(?:forget\s+(?:it|about\s+it|this|that)|never\s*mind|nvm|don'?t\s+bother|"
    r"leave\s+it)\b|^\W*(?:(?:no|nah|nope|ok|okay|oh|just|actually|please)\W+)*"
    r"(?:stop|cancel|quit|exit|abort)\b"
)
"""A directive to stop: the words people use for it anywhere, or a stop verb that opens the
message. "Changed my mind" or "don't want it anymore" say why, not what to do, and stay
answers even where the intent model reads them as cancel."""
_WORD = re.compile(r"[^\W\d_]{2,}")


def escapes(bot: Bot, intent: str, text: str) -> bool:
    """Whether a message the model confidently reads as a global intent (`intent`) leaves a
    free-text question: asking for a person always does; cancel, help or goodbye only when
    the message is that one word or a directive to stop."""
    if intent not in bot.policy.global_intents:
        return False
    flow = bot.flows.get(bot.triggers.get(intent, ""))
    if flow is not None and any(isinstance(op, Handoff) for op in flow.program):
        return True
    return len(_WORD.findall(text)) <= 1 or stops(text)


def stops(text: str) -> bool:
    """A directive to stop ("nah forget it", "never mind", "stop"), whatever the model read."""
    return _STOP.search(text) is not None
