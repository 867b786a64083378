"""When an automatic responder must stay silent (RFC 3834 §2), and the ledger that keeps it to
one reply per sender for the same thing said, however many processes answer mail."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from adapters.email.mime import Mail

_LIST_HEADERS = (
    "list-id",
    "list-post",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-owner",
    "list-archive",
)
_REPORT_PARTS = frozenset(
    {"message/delivery-status", "message/disposition-notification", "message/feedback-report"}
)
_BULK = frozenset({"bulk", "list", "junk", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "listserv", "majordomo", "mailman"})
_NO_REPLY = frozenset(
    {"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "bounce"}
)


def refusal(mail: Mail, own_addresses: frozenset[str] = frozenset()) -> str | None:
    """Why this mail must not be answered automatically, or None when it may be."""
    msg = mail.message
    auto = str(msg.get("auto-submitted", "")).split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for marker in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"):
        if marker in msg and str(msg.get(marker, "")).strip().lower() not in ("", "none", "no"):
            return f"{marker} present (an automatic message)"
    if mail.return_path is None:
        return "no Return-Path"
    if mail.return_path == "":
        return "null Return-Path <> (a bounce or notification)"
    if msg.get_content_type() == "multipart/report" or _has_dsn_part(mail):
        return "delivery or disposition report (DSN/MDN)"
    for addr in (mail.return_path, mail.sender):
        why = _robot_address(addr)
        if why:
            return why
    if {mail.return_path, mail.sender} & own_addresses:
        return "sent by this gateway's own address"
    for name in _LIST_HEADERS:
        if name in msg:
            return f"mailing list ({name})"
    precedence = str(msg.get("precedence", "")).strip().lower()
    if precedence in _BULK:
        return f"Precedence: {precedence}"
    return None


def _has_dsn_part(mail: Mail) -> bool:
    return any(part.get_content_type() in _REPORT_PARTS for part in mail.message.walk())


def _robot_address(addr: str) -> str | None:
    local = addr.split("@", 1)[0].lower()
    base = local.split("+", 1)[0]
    if base in _DAEMONS:
        return f"system sender {base}"
    if base.startswith("owner-") or base.endswith("-owner"):
        return "list owner address (owner-*)"
    if base.endswith("-request"):
        return "list request address (*-request)"
    if base in _NO_REPLY or base.startswith(("noreply", "no-reply", "donotreply", "do-not-reply")):
        return "no-reply sender"
    return None


class ReplyLedger(Protocol):
    """Who has been answered, shared by every process that sends mail. The in-memory version
    below serves one process; `core.redis.ledger.RedisReplyLedger` serves several (the
    gateway uses it when REDIS_URL is set)."""

    async def claim(self, key: str, owner: str, ttl: float) -> bool:
        """True when `key` was free (now held by `owner` for `ttl` s) or is held by `owner`."""
        ...

    async def count(self, key: str, member: str, ttl: float) -> int:
        """Add `member` to the set at `key` (expiring `ttl` s after its first member) and
        return the set's size."""
        ...

    async def close(self) -> None: ...


class MemoryReplyLedger:
    """One process's ledger, bounded: the oldest entries go first when it is full."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._sets: OrderedDict[str, tuple[set[str], float]] = OrderedDict()
        self._max = max_keys
        self._clock = clock

    async def claim(self, key: str, owner: str, ttl: float) -> bool:
        now = self._clock()
        held = self._owners.get(key)
        if held is not None and held[1] > now:
            return held[0] == owner
        self._owners[key] = (owner, now + ttl)
        self._owners.move_to_end(key)
        self._trim(self._owners)
        return True

    async def count(self, key: str, member: str, ttl: float) -> int:
        now = self._clock()
        held = self._sets.get(key)
        if held is None or held[1] <= now:
            held = (set(), now + ttl)
            self._sets[key] = held
            self._trim(self._sets)
        held[0].add(member)
        return len(held[0])

    async def close(self) -> None:
        return None

    def _trim(self, table: OrderedDict[str, Any]) -> None:
        while len(table) > self._max:
            table.popitem(last=False)
