"""Erasing one customer: what an erasure is asked for and what it removed, shared by the stores
that keep customer data (`core.redis.forget`, `core.sqlite.forget`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from core.models import Inbound


@dataclass(frozen=True, slots=True)
class Customer:
    """One customer of one channel: `user` is the platform's id of the person (a phone number,
    an address, a chat id). Their conversations are those they wrote in, and their direct chat
    `channel:user`."""

    channel: str
    user: str

    @property
    def direct(self) -> str:
        return f"{self.channel}:{self.user}"

    def wrote(self, inbound: Inbound) -> bool:
        conv = inbound.conversation
        return inbound.channel == self.channel and (
            inbound.sender.id == self.user or (conv.chat_id == self.user and not conv.thread_id)
        )


@dataclass(slots=True)
class Erasure:
    """What was removed, by kind (`sessions`, `queued events`, `dead letters`, ...), and what
    could not be reached."""

    removed: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        found = {k: n for k, n in sorted(self.removed.items()) if n}
        lines = [f"removed {n} {kind}" for kind, n in found.items()] or ["nothing was found"]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])
