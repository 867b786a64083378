"""Threads and replies: which conversation a mail belongs to, and the reply mail itself (plain
text and HTML with the options listed, RFC 3834 and RFC 5322 threading headers)."""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from adapters.email.mime import Mail
from core.models import Button
from core.render import numbered_options

_OURS = re.compile(r"^gw\.([0-9a-f]{16})\.([0-9a-f]{8})\.[0-9a-f]+@", re.IGNORECASE)
PREFIX = re.compile(
    r"\s*(?:re|fwd?|aw|wg|sv|vs|antw|tr|rif|r|odp|返信|回复|答复|転送)\s*(?:\[\d+\])?\s*[:：]\s*",
    re.IGNORECASE,
)
_MAX_REFERENCES = 20
SHORT_ANSWER = 40
"""Characters up to which a one-line text is an answer to the question it replies to."""
CHOICE_HINT = "Reply with the number of your choice."


def strip_prefixes(subject: str) -> str:
    """`Re: AW: Fwd: Order` → `Order`."""
    at = 0  # read on from each prefix, never copying the rest: a subject of "re:" repeated
    while (m := PREFIX.match(subject, at)) is not None and m.end() > at:
        at = m.end()
    return subject[at:].strip()


def normalise_subject(subject: str) -> str:
    """What stays the same across a thread: `Re: AW:  Fwd: Order` → `order`."""
    return " ".join(strip_prefixes(subject).split()).casefold()


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


def thread_of(mail: Mail) -> str:
    """The conversation's thread key. Our own Message-IDs carry the thread they answer, so a
    reply referencing any of them (even by In-Reply-To alone) lands in its thread; otherwise the
    References root, and a mail that references nothing starts one by its subject."""
    for mid in (*mail.references, mail.in_reply_to or ""):
        m = _OURS.match(mid)
        if m:
            return m.group(1).lower()
    root = mail.references[0] if mail.references else mail.in_reply_to
    if root:
        return _digest("ref:" + root)
    return _digest("subject:" + normalise_subject(mail.subject))


def new_message_id(thread: str, text: str, domain: str) -> str:
    """`gw.<thread>.<said>.<random>@<domain>` without angle brackets: the thread it answers and
    a digest of what it said, so a reply to it tells both without any stored state."""
    said = _digest(text)[:8]
    return f"gw.{thread}.{said}.{secrets.token_hex(8)}@{domain}"


def answered(mail: Mail) -> str:
    """The digest of our message this mail answers ("" when it answers none of ours): its
    direct parent (In-Reply-To), else the latest of ours in References."""
    for mid in (mail.in_reply_to or "", *reversed(mail.references)):
        m = _OURS.match(mid)
        if m:
            return m.group(2).lower()
    return ""


def exchange_key(mail: Mail, text: str) -> str:
    """What a repeat is: the same words from the same sender. A short answer ("2", "yes",
    "A1B2C3") counts as new again when it answers another message of ours; a longer text (an
    out-of-office notice) repeated is a repeat whatever it answers."""
    words = " ".join(text.split()).casefold()
    short = len(words) <= SHORT_ANSWER and "\n" not in text.strip()
    return _digest(f"{answered(mail) if short else '*'}|{words}")


def reply_subject(subject: str) -> str:
    subject = " ".join(subject.split())
    if not subject:
        return "Re: your message"
    return subject if re.match(r"^re\s*:", subject, re.IGNORECASE) else f"Re: {subject}"


def plain_body(text: str, buttons: Sequence[Button]) -> str:
    parts = [text.strip()] if text.strip() else []
    if buttons:
        parts += [numbered_options(buttons), CHOICE_HINT]
    return "\n\n".join(parts) + "\n"


def html_body(text: str, buttons: Sequence[Button]) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    out = [f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs]
    if buttons:
        items = "".join(f"<li>{html.escape(b.label)}</li>" for b in buttons)
        out += [f"<ol>{items}</ol>", f"<p>{html.escape(CHOICE_HINT)}</p>"]
    return "<!DOCTYPE html><html><body>" + "".join(out) + "</body></html>\n"


def reply(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    buttons: Sequence[Button],
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
) -> EmailMessage:
    """The automatic reply: marked `Auto-Submitted: auto-replied` (RFC 3834 §5), threaded with
    In-Reply-To and References, and asking Exchange-style responders not to answer it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = reply_subject(subject)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    refs = [r for r in references if r][-_MAX_REFERENCES:]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(plain_body(text, buttons))
    msg.add_alternative(html_body(text, buttons), subtype="html")
    return msg
