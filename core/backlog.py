"""Turning what a conversation sent while the bot was busy into one turn (an edit of a message
not yet answered taking its place), and mapping a typed choice ("2", or a button's label) back to
the button's payload."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from core.models import Button, Inbound

EditPolicy = Literal["replace_unanswered", "ignore", "as_new"]
"""What the bot does with an edited message: `replace_unanswered` reads an edit made before the
bot took the message up in its place (later edits and every delete are only recorded);
`ignore` records every edit and delete and answers none; `as_new` answers an edit like a new
message (deletes are recorded)."""
EDIT_POLICIES = frozenset(get_args(EditPolicy))

Fate = Literal["answer", "replaced", "withdrawn", "recorded", "as_new"]
"""What became of one event of a backlog: a message to answer; an edit or delete applied to a
message of the same backlog (`replaced`, `withdrawn`); an edit or delete of a message already
answered, or unknown, kept but not answered (`recorded`); an edit answered as new (`as_new`)."""


@dataclass(frozen=True, slots=True)
class Settled:
    """One event of a backlog once its edits are applied: `inbound` is what the turn answers
    in its place (a message with the text of a later edit), None when nothing is answered for
    it (an edit, a delete, a message deleted before it was answered)."""

    inbound: Inbound | None
    fate: Fate


def settle_edits(items: Sequence[Inbound], policy: EditPolicy) -> list[Settled]:
    """Each event of a backlog, in order, with what the turn does with it. Only a message of
    the same backlog can still be changed: one taken up by an earlier turn has its answer."""
    out: list[Settled] = []
    unanswered: dict[str, int] = {}
    """message_id → index in `out` of a message of this backlog."""
    for item in items:
        if item.kind == "message":
            if item.message_id is not None:
                unanswered[item.message_id] = len(out)
            out.append(Settled(item, "answer"))
            continue
        if item.kind == "edit" and policy == "as_new":
            out.append(Settled(item, "as_new"))
            continue
        at = unanswered.get(item.target_id or "") if policy == "replace_unanswered" else None
        original = out[at].inbound if at is not None else None
        if at is None or original is None:
            out.append(Settled(None, "recorded"))
        elif item.kind == "edit":
            # The message keeps its place and its identity; only what it says changed.
            out[at] = Settled(original.model_copy(update={"text": item.text}), "answer")
            out.append(Settled(None, "replaced"))
        else:
            out[at] = Settled(None, "withdrawn")
            del unanswered[item.target_id or ""]
            out.append(Settled(None, "withdrawn"))
    return out


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
