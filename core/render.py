"""Channel-free rendering helpers: long text split at natural boundaries, buttons fitted to a
channel's capabilities, and options written out as numbered text where buttons are missing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from core.models import Button, Capabilities

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_ELLIPSIS = "…"


def split_text(text: str, limit: int) -> list[str]:
    """`text` as parts of at most `limit` characters, cut at the last paragraph break, else line
    break, else sentence end, else space that fits. A word is cut only when it alone is longer
    than `limit` (a URL of 5000 characters has no better place). Empty text gives no parts."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _cut_point(text: str, limit: int) -> int:
    window = text[: limit + 1]
    for sep in ("\n\n", "\n"):
        at = window.rfind(sep, 0, limit + 1)
        if at > 0:
            return at
    ends = [m.start() for m in _SENTENCE_END.finditer(window) if 0 < m.start() <= limit]
    if ends:
        return ends[-1]
    at = max(window.rfind(" ", 0, limit + 1), window.rfind("\t", 0, limit + 1))
    return at if at > 0 else limit


def shorten(label: str, limit: int) -> str:
    """A label cut to `limit` characters with an ellipsis, never mid-word when a space is near."""
    label = " ".join(label.split())
    if len(label) <= limit:
        return label
    if limit <= 1:
        return label[:limit]
    head = label[: limit - 1]
    space = head.rfind(" ")
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip() + _ELLIPSIS


def numbered_options(buttons: Sequence[Button], start: int = 1) -> str:
    """Options as "1. Label" lines; a reply of the number (or the label) is mapped back to the
    button's payload by the core (`core.backlog.resolve_choice`)."""
    return "\n".join(f"{i}. {b.label}" for i, b in enumerate(buttons, start))


def fit_buttons(buttons: Sequence[Button], caps: Capabilities) -> tuple[list[Button], str]:
    """The buttons a channel can show natively (labels shortened to its limit), and the text that
    lists the others as numbered options. Numbering follows the full list, so typing "12" picks
    the twelfth option even when only ten were buttons. With `buttons == "numbered"` every
    option goes to the text."""
    if caps.buttons == "numbered":
        return [], numbered_options(buttons)
    native = [
        Button(label=shorten(b.label, caps.max_button_label), payload=b.payload)
        for b in buttons[: caps.max_buttons]
    ]
    overflow = buttons[caps.max_buttons :]
    return native, numbered_options(overflow, start=caps.max_buttons + 1) if overflow else ""


def with_options(text: str, options: str) -> str:
    """The message text with a numbered options block after a blank line."""
    if not options:
        return text
    return f"{text.rstrip()}\n\n{options}" if text.strip() else options


class PayloadKeys:
    """Button payloads too long for a channel's limit (Telegram's 64-byte callback data), as
    short deterministic keys: `k:` + a hash of the payload, the same in every process.

    The key → payload map lives in this process only. After a restart an old button's key is
    unknown here; adapters then report the pressed button's label as the message text, and the
    core maps the label back to the offered button's payload from the session
    (`resolve_choice`), so a press still works as long as that question is the open one.
    """

    PREFIX = "k:"

    def __init__(self, max_entries: int = 10_000) -> None:
        self._known: dict[str, str] = {}
        self._max = max_entries

    def encode(self, payload: str, limit: int) -> str:
        if len(payload.encode()) <= limit and not payload.startswith(self.PREFIX):
            return payload
        digest = hashlib.blake2b(payload.encode(), digest_size=12).hexdigest()
        key = self.PREFIX + digest[: max(8, min(24, limit - len(self.PREFIX)))]
        if key not in self._known:
            if len(self._known) >= self._max:
                self._known.pop(next(iter(self._known)))
            self._known[key] = payload
        return key

    def decode(self, data: str) -> str | None:
        """The payload behind `data`; None when it is a key this process never issued."""
        if not data.startswith(self.PREFIX):
            return data
        return self._known.get(data)
