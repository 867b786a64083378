"""Slack's request signature (v0): the HMAC keyed once, and the check of a request's headers."""

from __future__ import annotations

import hashlib
import hmac

from core.channel import WebhookRequest
from core.errors import VerificationError

MAX_SKEW = 300
"""Seconds a request's timestamp may be off: Slack's own replay window."""

_BLOCK = 64
"""SHA-256's block size: HMAC's key length."""
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class SlackSigner:
    """Slack's v0 signature (HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret),
    keyed once: RFC 2104's inner and outer hashes of the key are taken when the channel is built,
    so a request costs two hash copies and the body, all in C. slack_sdk's `SignatureVerifier`
    keys a new HMAC on every request, and its Python layers around `hmac` cost more than the
    hashing on the webhook's hot path (`bench/ingress.py` measures it). The library stays the
    reference: the tests hold this signer to its signatures and `verify` to its verdicts."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, signing_secret: str):
        if not signing_secret.strip():
            raise ValueError("SLACK_SIGNING_SECRET must not be empty")
        key = signing_secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def sign(self, timestamp: str, body: bytes) -> str:
        inner = self._inner.copy()
        inner.update(f"v0:{timestamp}:".encode())
        inner.update(body)  # as it is: not copied into one string with the prefix
        outer = self._outer.copy()
        outer.update(inner.digest())
        return "v0=" + outer.hexdigest()


def verify(signer: SlackSigner, req: WebhookRequest, now: float) -> None:
    """`VerificationError` unless `req` carries a signature of its body by `signer` and a
    timestamp within `MAX_SKEW` of `now`, as slack_sdk's `SignatureVerifier` decides."""
    stamp, signature = check_headers(req, now)
    body = req.body
    # As slack_sdk: Slack signs UTF-8 text, and anything else is refused (ASCII, the usual
    # body, is UTF-8 without decoding it).
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError:
            raise VerificationError("body is not UTF-8: not a request Slack signed") from None
    if not hmac.compare_digest(signer.sign(stamp, body), signature):
        raise VerificationError("X-Slack-Signature does not match the body")


def check_headers(req: WebhookRequest, now: float) -> tuple[str, str]:
    """The part of `verify` that needs no body: both headers there, the signature ASCII, the
    timestamp within `MAX_SKEW` of `now`. Returns (timestamp, signature)."""
    headers = req.headers  # looked up by lower-case name (see WebhookRequest)
    stamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not stamp or not signature:
        raise VerificationError("X-Slack-Signature or X-Slack-Request-Timestamp missing")
    if not signature.isascii():  # `compare_digest` takes no other text
        raise VerificationError("X-Slack-Signature is not a hex signature")
    try:
        skew = abs(now - int(stamp))
    except ValueError:
        raise VerificationError("X-Slack-Request-Timestamp is not a number") from None
    if skew > MAX_SKEW:
        raise VerificationError(f"timestamp {skew:.0f}s off (over {MAX_SKEW}s): replayed?")
    return stamp, signature
