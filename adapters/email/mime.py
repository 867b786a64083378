"""Reading real-world mail: the body a person wrote (plain text preferred, HTML converted),
charsets as mail clients really label them, encoded headers, attachments under a size limit.

Anyone can send mail, so every step is bounded before it runs: the standard library's header
parser is quadratic on some values and costs a tenth of a millisecond per MIME part, and HTML
takes milliseconds per kilobyte to convert (see `htmltext`). Headers are read cut to one line's
length, a message is read up to its `MAX_BOUNDARIES`th MIME boundary, and the body is cut before
it is converted; what was cut is said in a note."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parseaddr
from itertools import islice

from adapters.email.htmltext import html_to_text
from core.errors import PayloadError
from core.models import Attachment, AttachmentKind

_MSGID = re.compile(r"<([^<>\s]+)>")
_CHARSET_SUPERSETS = {
    # What mail clients write versus what they mean (the WHATWG encoding table does the same).
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "euc-jp": "euc_jis_2004",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
}
_KINDS: dict[str, AttachmentKind] = {"image": "image", "audio": "audio", "video": "video"}
MAX_HEADER_CHARS = 998
"""RFC 5322's longest line: a header value is read no further (our own References stay below)."""
RECORD_HEADER_CHARS = 256
"""Characters of each header kept in the event's raw record (for debugging, not for reading)."""
MAX_BOUNDARIES = 200
"""Lines starting with `--` (each may open or close a MIME part) read; a message with more is cut
there before it is parsed."""
MAX_TEXT_CHARS = 32_000
"""Characters of a plain-text body read (pages of typing; quoted history below is cut anyway)."""
MAX_HTML_CHARS = 64_000
"""Characters of an HTML body converted (room for a client's style sheet before the text)."""
_BOUNDARY_LINE = re.compile(rb"^--", re.MULTILINE)


class _BoundedPolicy(EmailPolicy):
    """`policy.default`, with each header value cut to `MAX_HEADER_CHARS` before the library
    parses it (address and parameter headers take quadratic time in their length)."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        if isinstance(value, str) and len(value) > MAX_HEADER_CHARS:
            value = value[:MAX_HEADER_CHARS]
        parsed: str = super().header_fetch_parse(name, value)  # a header object, a str too
        return parsed


POLICY = _BoundedPolicy()


@dataclass(frozen=True, slots=True)
class Mail:
    """One parsed message: who, what about, where in a thread, and its parts."""

    message: EmailMessage
    message_id: str
    sender: str
    sender_name: str | None
    return_path: str | None
    """None: no Return-Path at all; "": the null path `<>` (a bounce or notification)."""
    subject: str
    references: tuple[str, ...]
    in_reply_to: str | None
    body: str
    attachments: tuple[Attachment, ...]
    dropped: tuple[str, ...]


def read(raw: bytes, *, max_attachment_bytes: int) -> Mail:
    """Parse `raw` or raise `PayloadError` saying why it is not a message we can read."""
    if not raw.strip():
        raise PayloadError("empty message")
    raw, cut = _first_parts(raw)
    try:
        msg = BytesParser(policy=POLICY).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - the parser is lenient; anything raised is fatal
        raise PayloadError(f"not parseable MIME: {exc!r}") from None
    assert isinstance(msg, EmailMessage)
    if not msg.keys():
        raise PayloadError("not parseable MIME: no header section")
    sender_name, sender = _address(msg, "from")
    if not sender:
        raise PayloadError("not parseable MIME: no From address")
    message_id = _first_id(_header(msg, "message-id")) or _synthetic_id(raw)
    attachments, dropped = _attachments(msg, max_attachment_bytes)
    body, body_cut = _body(msg)
    dropped.extend(note for note in (body_cut, cut) if note)
    return Mail(
        message=msg,
        message_id=message_id,
        sender=sender,
        sender_name=sender_name or None,
        return_path=_return_path(msg),
        subject=" ".join(_header(msg, "subject").split()),
        references=tuple(_MSGID.findall(_header(msg, "references"))),
        in_reply_to=_first_id(_header(msg, "in-reply-to")),
        body=body,
        attachments=tuple(attachments),
        dropped=tuple(dropped),
    )


def _header(msg: Message, name: str) -> str:
    """The first `name` header as text ("" when missing)."""
    for key, raw in msg.raw_items():
        if key.lower() == name:
            return _value(msg, key, raw)
    return ""


def header_items(msg: Message, limit: int = 100) -> list[tuple[str, str]]:
    """The first `limit` headers as text (each cut to `RECORD_HEADER_CHARS`), for the event's
    raw record."""
    return [
        (key, _value(msg, key, raw[:RECORD_HEADER_CHARS]))
        for key, raw in islice(msg.raw_items(), limit)
    ]


def _value(msg: Message, name: str, raw: str) -> str:
    """A header the policy cannot parse (`Message-ID: <@>` raises IndexError deep in the
    library, and only when the value is read) is its raw text: it must not make the mail
    unreadable."""
    try:
        return str(msg.policy.header_fetch_parse(name, raw))
    except Exception:  # noqa: BLE001 - any header parser failure, see above
        return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _address(msg: Message, name: str) -> tuple[str, str]:
    pairs = getaddresses([_header(msg, name)])
    for display, addr in pairs:
        if "@" in addr:
            return display, addr.strip().lower()
    return "", ""


def _return_path(msg: Message) -> str | None:
    """The topmost Return-Path (the last delivery agent's) as an address; "" for `<>`."""
    if "return-path" not in msg:
        return None
    value = _header(msg, "return-path").strip()
    addr = parseaddr(value)[1].strip().lower()
    return addr if "@" in addr else ""


def _first_id(value: str) -> str | None:
    found = _MSGID.findall(value)
    if found:
        return str(found[0])
    bare = value.strip()
    return bare if bare and " " not in bare else None


def _synthetic_id(raw: bytes) -> str:
    """A mail without Message-ID still needs a stable dedupe key: the same bytes, the same id."""
    return "sha256." + hashlib.sha256(raw).hexdigest()[:32] + "@no-message-id"


def decode_part(part: Message) -> str:
    """A text part's content, decoded with the charset it names (read as the superset clients
    really use), unknown charsets as UTF-8; undecodable bytes replaced, never fatal."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    charset = (part.get_content_charset() or "us-ascii").strip().lower()
    charset = _CHARSET_SUPERSETS.get(charset, charset)
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _body(msg: EmailMessage) -> tuple[str, str | None]:
    """The text the sender wrote (text/plain when there is one, else the HTML as text), cut to
    `MAX_TEXT_CHARS` (an HTML body to `MAX_HTML_CHARS` before it is converted), and the note
    saying so when it was cut."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", None
    text = decode_part(part)
    html = part.get_content_subtype() == "html"
    limit = MAX_HTML_CHARS if html else MAX_TEXT_CHARS
    note = None
    if len(text) > limit:
        text = text[:limit]
        note = f"[message cut: only its first {limit:,} characters were read]"
    if html:
        text = html_to_text(text)
    return text.replace("\r\n", "\n").replace("\r", "\n"), note


def _first_parts(raw: bytes) -> tuple[bytes, str | None]:
    """`raw` up to its line `MAX_BOUNDARIES + 1` that starts with `--`, and the note saying so
    when it was cut."""
    for n, m in enumerate(_BOUNDARY_LINE.finditer(raw)):
        if n == MAX_BOUNDARIES:
            return raw[: m.start()], f"[message cut after {MAX_BOUNDARIES} MIME boundaries]"
    return raw, None


def _attachments(msg: EmailMessage, limit: int) -> tuple[list[Attachment], list[str]]:
    body = msg.get_body(preferencelist=("plain", "html"))
    kept: list[Attachment] = []
    dropped: list[str] = []
    for part in _leaves(msg):
        if part is body or not _is_attachment(part):
            continue
        name = part.get_filename() or None
        data = part.get_payload(decode=True)
        content = data if isinstance(data, bytes) else part.as_bytes()
        mime = part.get_content_type()
        if len(content) > limit:
            shown = name or mime
            dropped.append(
                f'[attachment "{shown}" ({_size(len(content))}) dropped: over the'
                f" {_size(limit)} limit]"
            )
            continue
        kind = _KINDS.get(part.get_content_maintype(), "file")
        kept.append(
            Attachment(kind=kind, mime_type=mime, size=len(content), name=name, content=content)
        )
    return kept, dropped


def _leaves(msg: Message) -> list[Message]:
    """Every non-container part; an attached message (message/rfc822) is one leaf."""
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        found: list[Message] = []
        for sub in msg.get_payload():
            found.extend(_leaves(sub))  # type: ignore[arg-type]
        return found
    return [msg]


def _is_attachment(part: Message) -> bool:
    if part.get_content_disposition() == "attachment" or part.get_filename():
        return True
    return part.get_content_maintype() not in ("text", "multipart")


def _size(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB" if n >= 1_048_576 else f"{n / 1024:.0f} KB"


def address_domain(addr: str) -> str:
    return Address(addr_spec=parseaddr(addr)[1]).domain or "localhost"


def with_return_path(raw: bytes, envelope_from: str) -> bytes:
    """What a delivery agent does: the envelope sender (MAIL FROM) written as the topmost
    Return-Path, replacing any the message claimed for itself; `<>` stays the null path."""
    lines = raw.splitlines(keepends=True)
    out: list[bytes] = []
    in_headers, skipping = True, False
    for line in lines:
        if in_headers:
            if line in (b"\r\n", b"\n"):
                in_headers = False
            elif line[:1] in (b" ", b"\t") and skipping:
                continue
            else:
                skipping = line.lower().startswith(b"return-path:")
                if skipping:
                    continue
        out.append(line)
    addr = envelope_from.strip().strip("<>")
    return f"Return-Path: <{addr}>\r\n".encode() + b"".join(out)
