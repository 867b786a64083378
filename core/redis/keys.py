"""Key names without personal data: an e-mail address, a phone number or a chat id in a key
name shows in `SCAN`/`KEYS`, `MONITOR`, the slow log and every tool that lists keys."""

from __future__ import annotations

import hashlib


def hashed(name: str) -> str:
    """`email:jane@example.com` → `email:<32 hex digits>`: the label before the first colon
    (the channel, mostly) stays readable for operators, the rest is hashed. Unkeyed, as the
    processes share no secret for it: it keeps identifiers out of sight, not from someone who
    can guess them and has the key list."""
    label, sep, rest = name.partition(":")
    if not sep:
        label, rest = "", name
    digest = hashlib.blake2b(rest.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"{label}:{digest}" if label else digest
