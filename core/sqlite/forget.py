"""Erasing one customer from the embedded default's files in DATA_DIR: the queue's spill file
(events not handled at the last shutdown, with their text), the dedupe keys of those events,
and their conversations' sessions and web chat transcripts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from core.forget import Customer, Erasure
from core.models import Inbound
from core.sqlite import sessions, transcript
from core.sqlite.db import Database
from core.sqlite.keys import SqliteKeys


async def forget(
    spill: Path,
    keys: SqliteKeys,
    who: Customer,
    erasure: Erasure,
    events: Sequence[str] = (),
    *,
    state: Database | None = None,
    known: Sequence[str] = (),
) -> None:
    """`events` and `known`: dedupe keys of events and keys of conversations found elsewhere
    (the conversation store) to be theirs. `state`: the sessions and transcripts file."""
    erased = _erase_spill(spill, who)
    erasure.removed["queued events"] += len(erased)
    seen = sorted({*events, *(i.dedupe_key for i in erased)})
    if seen:
        erasure.removed["dedupe keys"] += await keys.forget(seen)
    if state is not None:
        conversations = {who.direct, *known, *(i.conversation.key for i in erased)}
        await _erase_state(state, sorted(conversations), erasure)


async def _erase_state(state: Database, conversations: list[str], erasure: Erasure) -> None:
    async with state.transaction() as db:
        for key in conversations:
            done = await db.execute(sessions.DELETE, (key,))
            erasure.removed["sessions"] += max(done.rowcount, 0)
            done = await db.execute(transcript.DELETE, (key,))
            erasure.removed["web chat transcript entries"] += max(done.rowcount, 0)


def _erase_spill(path: Path, who: Customer) -> list[Inbound]:
    """The spill file without `who`'s lines, written beside and renamed over it (a crash leaves
    the old file or the new one); unreadable lines are kept for the queue to set aside."""
    if not path.exists():
        return []
    kept: list[bytes] = []
    erased: list[Inbound] = []
    for line in path.read_bytes().splitlines(keepends=True):
        try:
            inbound = Inbound.model_validate_json(line)
        except ValidationError:
            kept.append(line)
            continue
        if who.wrote(inbound):
            erased.append(inbound)
        else:
            kept.append(line)
    if erased:
        tmp = path.with_name(path.name + ".forget")
        tmp.write_bytes(b"".join(kept))
        os.replace(tmp, path)
    return erased
