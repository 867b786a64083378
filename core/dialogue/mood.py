"""Signs that a customer is annoyed: shouting, a run of exclamation marks, angry emoji and the
things people say when a bot is not helping. Used to hand over to a person when the customer
is also stuck, and to apologise when the bot can still help."""

from __future__ import annotations

import re

_ANGRY = re.compile(
    r"(?i)\b(?:are\s+you\s+(?:even\s+)?(?:listening|reading|a\s+bot|serious|kidding)|"
    r"useless|ridiculous|pathetic|stupid|idiot\w*|dumb|waste\s+of\s+(?:my\s+)?time|"
    r"not\s+help(?:ing|ful)|(?:doesn'?t|does\s+not|don'?t)\s+help|unacceptable|"
    r"(?:already|just)\s+(?:told|said|gave|sent)|(?:asked|told\s+you|said)\s+(?:\w+\s+)?"
    r"(?:times|twice)|fed\s+up|sick\s+of|worst|terrible|awful|wtf|ffs|"
    r"f+u+c+k\w*|shit\w*|damn\w*|bloody|hopeless|what\s+the\s+hell)\b"
)
_EMOJI = re.compile("[\U0001f620\U0001f621\U0001f624\U0001f92c\U0001f47f\U0001f4a2]")
_WORD = re.compile(r"[^\W\d_]{2,}")
_BANG = re.compile(r"[!?]*![!?]*!")


def frustrated(text: str) -> bool:
    """True when the message reads as clearly annoyed. One emphasised word ("I said NOT")
    is not shouting; most words in capitals, or three of them, is."""
    if _ANGRY.search(text) or _EMOJI.search(text):
        return True
    words = _WORD.findall(text)
    loud = [w for w in words if w.isupper()]
    shouting = len(loud) >= 3 or (len(loud) >= 2 and len(loud) * 2 > len(words))
    return shouting or (len(loud) >= 1 and bool(_BANG.search(text)) and len(words) >= 3)
