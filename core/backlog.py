"""Turning what a conversation sent while the bot was busy into one turn, and mapping a typed
choice ("2", or a button's label) back to the button's payload."""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.models import Button, Inbound

_NUMBERED = re.compile(r"^\s*\(?(\d{1,2})[.)]?\s*$")


def coalesce(items: Sequence[Inbound]) -> Inbound:
    """One Inbound for a backlog: texts joined in order, attachments gathered, the latest button
    press and the latest event's identity. Stale messages are read together, not answered one by
    one."""
    if len(items) == 1:
        return items[0]
    last = items[-1]
    text = "\n".join(t for t in (i.text.strip() for i in items) if t)
    payload = next((i.payload for i in reversed(items) if i.payload), None)
    attachments = tuple(a for i in items for a in i.attachments)
    meta = {**last.meta, "batched": str(len(items))}
    return last.model_copy(
        update={"text": text, "payload": payload, "attachments": attachments, "meta": meta}
    )


def resolve_choice(offered: Sequence[Button], inbound: Inbound) -> Inbound:
    """On channels without native buttons options are numbered; "2", "2." or the label itself
    (any case) stands for pressing that button."""
    if inbound.payload or not offered or not inbound.text:
        return inbound
    text = inbound.text.strip()
    chosen: Button | None = None
    m = _NUMBERED.match(text)
    if m:
        n = int(m.group(1))
        if 1 <= n <= len(offered):
            chosen = offered[n - 1]
    else:
        folded = text.casefold().rstrip(".!")
        chosen = next((b for b in offered if b.label.casefold() == folded), None)
    if chosen is None:
        return inbound
    return inbound.model_copy(update={"payload": chosen.payload})
