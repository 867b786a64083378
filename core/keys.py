"""Key names without personal data: an e-mail address, a phone number, a client address or a
chat id in a key name shows in `SCAN`/`KEYS`, `MONITOR`, the slow log and every tool that lists
keys. Every store that names keys by who they are about (Redis's, the limits' memory) uses this."""

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
    return f"{label}:{hidden(rest)}" if label else hidden(rest)


def hidden(value: str) -> str:
    """32 hex digits that stand for `value` (an e-mail address, a client address) inside a key
    name, always the same for the same value."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
