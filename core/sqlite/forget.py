"""Erasing one customer from the embedded default's files in DATA_DIR: the queue's spill file
(events not handled at the last shutdown, with their text) and the dedupe keys of those events."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from core.forget import Customer, Erasure
from core.models import Inbound
from core.sqlite.keys import SqliteKeys


async def forget(
    spill: Path, keys: SqliteKeys, who: Customer, erasure: Erasure, events: Sequence[str] = ()
) -> None:
    """`events`: dedupe keys of events found elsewhere (the conversation store) to be theirs."""
    erased = _erase_spill(spill, who)
    erasure.removed["queued events"] += len(erased)
    seen = sorted({*events, *(i.dedupe_key for i in erased)})
    if seen:
        erasure.removed["dedupe keys"] += await keys.forget(seen)


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
