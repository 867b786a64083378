"""What writing a finished turn to the conversation store costs: the worker does it after every
turn (the conversation made or brought up to date, the customer's line, the bot's reply, the
turn's record). `SqlConversations.record_turn` (statements prepared once; on SQLite the writer's
own thread with the blocking driver) against, in the same run, the same statements through the
async engine (aiosqlite: each statement handed to its thread and back, as every turn's write went
before, when each statement was also built anew). New conversations (each turn opens one) and
turns of conversations that exist, one turn at a time and 16 at once; rounds alternate, each
one's best kept. CPU is the process's, all its threads.

    python -m bench.turn_write [--turns 1000] [--rounds 3]"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.conversations import Said, TurnFact, TurnLog
from core.models import ConversationRef, Sender
from core.sql.db import Database, database_url
from core.sql.store import SqlConversations
from core.sql.turns import write_turn

Writer = Callable[[TurnLog], Awaitable[object]]
EXISTING = 50


def turn(conversation: int, n: int) -> TurnLog:
    key, at = f"e{conversation}-{n}", time.time()
    fact = TurnFact(
        key, at, "where is my order [order]", "order_status", 0.93,
        [("order_status", 0.93), ("refund", 0.04)], "answered", "orders", None, 0.05,
    )  # fmt: skip
    return TurnLog(
        ConversationRef(channel="telegram", chat_id=f"c{conversation}"),
        Sender(id=f"c{conversation}", name="Ann"),
        [Said(key, "where is my order [order]", at)],
        [Said(f"{key}:0", "Order A1B2C3 shipped on Monday.", 0.0)],
        "order_status", 0.93, {"order_id": "A1B2C3"}, False, None, None, turn=fact,
    )  # fmt: skip


def through_aiosqlite(db: Database) -> Writer:
    async def write(log: TurnLog) -> object:
        async with db.session() as s, s.begin():
            return await s.run_sync(functools.partial(write_turn, db.dialect, log))

    return write


async def timed(write: Writer, logs: list[TurnLog], at_once: int) -> tuple[float, float]:
    """(turns/s, CPU ms a turn: this process, all its threads)."""
    gate = asyncio.Semaphore(at_once)

    async def one(log: TurnLog) -> None:
        async with gate:
            await write(log)

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(log) for log in logs))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(logs) / wall, cpu / len(logs) * 1000


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with Database(database_url(None, Path(tmp))) as db:
            paths = {
                "record_turn": SqlConversations(db).record_turn,
                "aiosqlite": through_aiosqlite(db),
            }
            for p, write in enumerate(paths.values()):  # warm-up; the existing conversations
                await write(turn(EXISTING + p, 0))
                for c in range(EXISTING):
                    await write(turn(c, p + 1))
            best: dict[tuple[str, str, int], tuple[float, float]] = {}
            serial = 10_000
            for _ in range(args.rounds):
                for kind in ("new conversations", "existing conversations"):
                    for at_once in (1, 16):
                        for path, write in paths.items():
                            serial += 1
                            logs = [
                                turn(serial * 100_000 + i if kind.startswith("new") else
                                     i % EXISTING, serial * 100_000 + i)
                                for i in range(args.turns)
                            ]  # fmt: skip
                            got = await timed(write, logs, at_once)
                            k = (kind, path, at_once)
                            best[k] = max(best.get(k, got), got, key=lambda r: r[0])
    print(f"\nSQLite file: {args.turns} turns a run, best of {args.rounds} rounds")
    print("| turns | at once | aiosqlite: turns/s | CPU ms a turn | record_turn: turns/s "
          "| CPU ms a turn | record_turn / aiosqlite |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ("new conversations", "existing conversations"):
        for at_once in (1, 16):
            b, n = best[(kind, "aiosqlite", at_once)], best[(kind, "record_turn", at_once)]
            print(f"| {kind} | {at_once} | {b[0]:.0f} | {b[1]:.2f} | {n[0]:.0f} | {n[1]:.2f} "
                  f"| {n[0] / b[0]:.2f}x |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000, help="turns a run (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each one's best kept")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
