"""The new text of a reply: quoted history, reply headers and signatures cut off, so a reply of
"2" above a quoted question reaches the bot as "2"."""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^(?:On|Le|Am|El|Il|Op|Em|Den|På|W dniu|Dne)\s.{0,300}?"
    r"(?:wrote|a écrit|schrieb|escribió|ha scritto|schreef|escreveu|skrev|napisał|napsal)"
    r"(?:\s[^\n]{0,200})?\s*:\s*$",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_CUT_LINES = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original)"
        r"\s*-{2,}$",
        r"^-{2,}\s*forwarded message\s*-{2,}$",
        r"^_{10,}$",  # Outlook's rule above the quoted headers
        r"^\* \* \*$",  # an HTML <hr> (Outlook's, before the quote) as html2text writes it
        r"^\d{4}年\d{1,2}月\d{1,2}日.{0,200}:$",  # Gmail in Japanese
        r"^.{0,200}(?:さんは書きました|のメッセージ)\s*[:：]$",
        r"^-- ?$",  # the signature delimiter (RFC 3676 §4.3)
        r"^(?:sent from my|sent from outlook|get outlook for|envoyé de mon|"
        r"von meinem .{0,30}gesendet|enviado desde mi|inviato da)\b.*$",
    )
]
_OUTLOOK_HEADER = re.compile(r"^\*?(?:from|von|de|van)\s*:\*?\s", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\*?(?:sent|date|gesendet|envoyé|to|an|à)\s*:", re.IGNORECASE)


def new_text(body: str) -> str:
    """What the sender typed above (or between) the quotes of earlier mail."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    m = _ATTRIBUTION.search(text)
    if m:
        text = text[: m.start()]
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if any(p.match(stripped) for p in _CUT_LINES):
            break
        if _OUTLOOK_HEADER.match(stripped) and any(
            _OUTLOOK_NEXT.match(nxt.strip()) for nxt in lines[i + 1 : i + 4]
        ):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line.rstrip())
    out = "\n".join(kept).strip()
    return re.sub(r"\n{3,}", "\n\n", out)
