"""Entity extraction off the event loop and within a time budget, for the turn and the parser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog

from core.ports import Entity

log = structlog.get_logger(__name__)

Extract = Callable[[str], Sequence[Entity]]

BUDGET = 3.0
"""Seconds a turn waits for its entities. The finders are bounded on any text, so this is a
backstop, not the bound; it is long enough for dateparser's first use in a cold process."""


async def extract_off_loop(
    extract: Extract, text: str, budget: float = BUDGET
) -> tuple[Entity, ...]:
    """`extract(text)` on a worker thread, so webhooks and `/healthz` are answered meanwhile.
    Past `budget` seconds, or when the extractor fails, the turn goes on without entities (the
    flow then asks for what it needs): a message's text must never hold up its answer."""
    try:
        return tuple(await asyncio.wait_for(asyncio.to_thread(extract, text), budget))
    except TimeoutError:
        log.warning("entities.over_budget", budget_s=budget, chars=len(text))
    except Exception:
        log.exception("entities.failed", chars=len(text))
    return ()
