"""How long the insights page's figures and the turn export take on a busy store: TURNS turns
over 90 days (a mix of outcomes, handoffs with their transitions, feedback) written straight
into a fresh store, then the insights of 92 days read and counted, and a year's export streamed
as CSV. Reports each time and how much the process grew while exporting.

    python -m bench.insights --turns 50000 [--database-url postgresql://...]"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from core.insights import report
from core.sql.db import Database
from core.sql.models import ConversationRow, HandoffRow, TurnRow
from core.sql.store import SqlConversations
from core.turn_export import csv_header, line, record

PER_CONVERSATION = 5
DAY = 86_400.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _fill(db: Database, turns: int, now: float) -> None:
    rnd = random.Random(1)
    start = now - 90 * DAY
    convs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    handoffs: list[dict[str, Any]] = []
    for i in range(turns // PER_CONVERSATION):
        channel = rnd.choice(["telegram", "webchat", "whatsapp"])
        convs.append(
            {"id": i + 1, "key": f"{channel}:{i}", "channel": channel, "chat_id": str(i),
             "customer_id": str(i), "created_at": start, "updated_at": start, "slots": {},
             "meta": {}}
        )  # fmt: skip
        first = start + rnd.random() * 89 * DAY
        for n in range(PER_CONVERSATION):
            outcome = rnd.choices(["answered", "clarified", "fallback", "handoff"], [80, 8, 7, 5])
            at = first + n * 60
            rows.append(
                {"conversation_id": i + 1, "key": f"k{i}-{n}", "channel": channel, "at": at,
                 "text": "where is [email]'s order A1B2C3", "intent": rnd.choice(
                     ["order_status", "refund", "greet", "human"]),
                 "confidence": rnd.random(), "ranking": [["order_status", 0.7]],
                 "outcome": outcome[0], "latency": rnd.random(), "asked_feedback": False,
                 "feedback": rnd.choice([None, None, "up", "down"])}
            )  # fmt: skip
            if outcome[0] == "handoff":
                handoffs.append(
                    {"conversation_id": i + 1, "from_state": "bot", "to_state": "waiting",
                     "actor": "bot", "reason": rnd.choice(["fallback", "support", "orders"]),
                     "at": at + 1}
                )  # fmt: skip
    async with db.session() as s, s.begin():
        await s.execute(insert(ConversationRow), convs)
        await s.execute(insert(TurnRow), rows)
        await s.execute(insert(HandoffRow), handoffs)


async def measure(url: str, turns: int) -> None:
    async with Database(url) as db:
        now = time.time()
        await _fill(db, turns, now)
        store = SqlConversations(db)
        t = time.perf_counter()
        stats = await store.turn_stats(now - 92 * DAY, now)
        read = time.perf_counter() - t
        t = time.perf_counter()
        report(stats, now - 92 * DAY, now, "day")
        counted = time.perf_counter() - t
        before, size = _rss_mb(), len(csv_header())
        t = time.perf_counter()
        async for conv_id, channel, fact in store.turn_records(now - 366 * DAY, now):
            size += len(line(record(conv_id, channel, fact), "csv"))
        exported = time.perf_counter() - t
        print(
            f"{db.dialect}, {len(stats)} turns: insights read {read:.2f} s + counted "
            f"{counted:.2f} s; export {size / 1e6:.1f} MB of CSV in {exported:.2f} s, the "
            f"process grew {_rss_mb() - before:.0f} MB while exporting"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--turns", type=int, default=50_000)
    ap.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(measure(url, args.turns))


if __name__ == "__main__":
    main()
