"""Web chat sessions as tokens the server issues and signs, and the proof of work a page may be
asked to solve before its first message. A visitor can keep its own session across reloads,
never pick someone else's: a session id the client makes up, or a token it forges, gets a new
session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

SECRET_FILE = "webchat-secret"  # noqa: S105 - a file name, not a secret
_TOKEN = re.compile(r"([A-Za-z0-9_-]{22})\.([cv])\.([A-Za-z0-9_-]{32})")
_NONCE = re.compile(r"[0-9a-z]{1,24}")


@dataclass(frozen=True, slots=True)
class Pass:
    session: str
    """The conversation's id (not secret: it is in logs and handoff records)."""
    verified: bool
    """False while the proof of work asked for is not yet solved."""


class SessionTokens:
    """`<session>.<c|v>.<signature>`: HMAC-SHA256 over the session id and whether its
    challenge was solved, so neither can be changed without the key. Stateless: every
    `serve` process with the same key accepts every other's tokens."""

    def __init__(self, key: bytes):
        self._key = key

    def new(self, *, verified: bool) -> Pass:
        return Pass(session=secrets.token_urlsafe(16), verified=verified)

    def token(self, p: Pass) -> str:
        body = f"{p.session}.{'v' if p.verified else 'c'}"
        return f"{body}.{self._sign(body)}"

    def read(self, token: str | None) -> Pass | None:
        """The pass a genuine token carries; None for anything else."""
        m = _TOKEN.fullmatch(token or "")
        if m is None:
            return None
        session, flag, signature = m.groups()
        if not hmac.compare_digest(signature, self._sign(f"{session}.{flag}")):
            return None
        return Pass(session=session, verified=flag == "v")

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._key, b"webchat-session\0" + body.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode()[:32]


def pow_solved(seed: str, nonce: str, bits: int) -> bool:
    """True when SHA-256(`seed:nonce`) starts with `bits` zero bits (`bits` at most 32). The
    page tries nonces until one fits, about 2**bits hashes; checking it is one hash."""
    if not _NONCE.fullmatch(nonce):
        return False
    head = hashlib.sha256(f"{seed}:{nonce}".encode()).digest()[:4]
    return int.from_bytes(head, "big") >> (32 - bits) == 0


def load_key(secret: str | None, data_dir: Path) -> bytes:
    """WEBCHAT_SECRET when set; else a random key made once and kept in DATA_DIR, so a restart
    (and every process sharing DATA_DIR) keeps accepting the visitors' tokens. If DATA_DIR
    cannot hold it, a key for this process only, and sessions start over at each restart."""
    if secret:
        return secret.encode()
    try:
        return _kept_key(data_dir / SECRET_FILE)
    except (OSError, ValueError) as exc:
        log.warning("webchat.secret_not_kept", path=str(data_dir / SECRET_FILE), error=str(exc))
        return secrets.token_bytes(32)


def _kept_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and linked into place: two processes starting together agree on the
        # one that links first, and nobody reads a half-written file.
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
        finally:
            os.close(fd)
        try:
            os.link(aside, path)
            log.info("webchat.secret_made", path=str(path))
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    if len(key) < 16:
        raise ValueError("the kept key is too short")
    return key
