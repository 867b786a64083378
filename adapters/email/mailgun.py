"""The e-mail webhook's signature (Mailgun's scheme, required for every form of post) and the
forms it arrives in: raw MIME, or a Mailgun route's form with `body-mime` or parsed fields."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qsl

from adapters.email.mime import with_return_path
from core.channel import Claim, WebhookRequest
from core.errors import PayloadError, VerificationError

WINDOW = 900.0
"""Seconds a signed timestamp stays acceptable either side of now."""
_SKIP_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Form:
    fields: Mapping[str, str]
    files: tuple[Upload, ...] = ()


def is_form(req: WebhookRequest) -> bool:
    ctype = req.header("content-type").split(";", 1)[0].strip().lower()
    return ctype in ("application/x-www-form-urlencoded", "multipart/form-data")


def read_form(req: WebhookRequest) -> Form:
    ctype = req.header("content-type")
    if ctype.lower().startswith("multipart/form-data"):
        return _multipart(ctype, req.body)
    try:
        return Form(dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True)))
    except UnicodeDecodeError:
        raise PayloadError("form is not UTF-8") from None


def _multipart(ctype: str, body: bytes) -> Form:
    head = b"Content-Type: " + ctype.encode("latin-1", "replace") + b"\r\n\r\n"
    msg = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise PayloadError("multipart/form-data body without parts")
    fields: dict[str, str] = {}
    files: list[Upload] = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename:
            files.append(Upload(str(name), filename, part.get_content_type(), data))
        else:
            fields[str(name)] = data.decode(part.get_content_charset() or "utf-8", "replace")
    return Form(fields, tuple(files))


def claim(req: WebhookRequest) -> Claim:
    """The token a verified post spends, bound to the body it signed: the same token with the
    same body is the platform retrying (the queue dedupes the message), with another body it is
    a replay. The gateway checks it in the store every process shares (and the next one, after
    a restart, finds): a memory of one process would let a second `serve` or a restart take the
    token again, and a replay reaching a process first would make it refuse the real retry. A
    token is good only inside the timestamp's window, so it is remembered as long as that
    window lasts either side of now."""
    _, token, _ = Verifier._triple(req)  # the token verify checked, picked the same way
    return Claim(f"mailgun:{token}", hashlib.sha256(req.body).hexdigest(), 2 * WINDOW)


@dataclass
class Verifier:
    """HMAC-SHA256(signing key, timestamp + token), hex, as Mailgun signs its posts. Read from
    the form fields of a form post, else from `X-Mailgun-Timestamp/-Token/-Signature` headers
    or `timestamp`/`token`/`signature` query parameters (raw MIME posts)."""

    key: bytes
    clock: Callable[[], float] = time.time

    def precheck(self, req: WebhookRequest) -> None:
        """A form carries the signature in its body; any other post in its headers or query,
        checked here before the body is read (all but the token's binding to the body)."""
        if not is_form(req):
            self._check(*self._triple(req))

    def verify(self, req: WebhookRequest) -> None:
        ts, token, sig = self._triple(req)
        self._check(ts, token, sig)  # the token's binding to the body: see `claim`

    def _check(self, ts: str, token: str, sig: str) -> None:
        if not (ts and token and sig):
            raise VerificationError("timestamp, token and signature are required")
        try:
            age = abs(self.clock() - float(ts))
        except ValueError:
            raise VerificationError("timestamp is not a number") from None
        if age > WINDOW:
            raise VerificationError(f"timestamp {age:.0f} s away from now (window {WINDOW:.0f} s)")
        # As bytes: a field or header that is not text (surrogate escapes of bytes that are not
        # UTF-8, letters past ASCII) must fail the comparison, not raise out of it.
        signed = (ts + token).encode("utf-8", "surrogateescape")
        good = hmac.new(self.key, signed, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(good, sig.lower().encode("utf-8", "surrogateescape")):
            raise VerificationError("signature does not match")

    @staticmethod
    def _triple(req: WebhookRequest) -> tuple[str, str, str]:
        names = ("timestamp", "token", "signature")
        if is_form(req):
            try:
                fields = read_form(req).fields
            except PayloadError:
                fields = {}
            if all(fields.get(n) for n in names):
                return fields["timestamp"], fields["token"], fields["signature"]
        ts, token, sig = (req.header(f"x-mailgun-{n}") for n in names)
        if ts and token and sig:
            return ts, token, sig
        q = req.query
        return q.get("timestamp", ""), q.get("token", ""), q.get("signature", "")


def mime_from_form(form: Form) -> bytes:
    """The message as MIME bytes, from `body-mime` or rebuilt from Mailgun's parsed fields; the
    envelope `sender` becomes the Return-Path when the message has none."""
    f = form.fields
    sender = f.get("sender", "").strip()
    if any(c < " " or c == "\x7f" for c in sender):
        # A line break would write a header of the sender's choosing, or fail the message's
        # construction: the envelope sender is one address.
        raise PayloadError("sender holds a line break or a control character")
    if f.get("body-mime"):
        raw = f["body-mime"].encode("utf-8")
        head = raw.split(b"\n\n", 1)[0].lower()
        if sender and b"return-path:" not in head:
            raw = with_return_path(raw, sender)
        return raw
    if not (f.get("message-headers") or f.get("from")):
        raise PayloadError("form needs body-mime, or message-headers / from with body-plain")
    msg = EmailMessage()
    try:
        pairs = json.loads(f.get("message-headers") or "[]")
    except (ValueError, RecursionError):
        raise PayloadError("message-headers is not JSON") from None
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and str(pair[0]).lower() not in _SKIP_HEADERS:
            _set_header(msg, str(pair[0]), str(pair[1]))
    for name, key in (("From", "from"), ("Subject", "subject")):
        if name not in msg and f.get(key):
            _set_header(msg, name, f[key])
    if "Return-Path" not in msg and sender:
        msg["Return-Path"] = f"<{sender}>"
    plain, rich = f.get("body-plain", ""), f.get("body-html", "")
    if plain or not rich:
        msg.set_content(plain)
        if rich:
            msg.add_alternative(rich, subtype="html")
    else:
        msg.set_content(rich, subtype="html")
    for up in form.files:
        maintype, _, subtype = up.content_type.partition("/")
        msg.add_attachment(
            up.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=up.filename,
        )
    return msg.as_bytes()


def _set_header(msg: EmailMessage, name: str, value: str) -> None:
    """Add a header unless the library refuses it: a second Subject/From (the first stands) is
    a ValueError, a value it cannot parse (`Message-ID: <@>`) an IndexError from deep inside."""
    try:
        msg[name] = value
    except Exception:  # noqa: BLE001 - a header we cannot store is left out, see above
        return
