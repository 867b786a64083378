"""Several processes opening one new SQLite file at once all get it in WAL mode."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from core.sqlite.wal import WAL, enable_wal, enable_wal_async


def test_connections_opening_one_new_file_together_all_switch_it_to_wal(tmp_path: Path) -> None:
    # Without the retry about one trial in eight fails with "database is locked" on 2 cores.
    failures: list[BaseException] = []
    for trial in range(40):
        path = tmp_path / f"{trial}.sqlite3"
        start = threading.Barrier(6)

        def open_one(path: Path = path, start: threading.Barrier = start) -> None:
            db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
            try:
                start.wait()
                enable_wal(db.execute)
                db.executescript("CREATE TABLE IF NOT EXISTS t (a)")
            except BaseException as exc:
                failures.append(exc)
            finally:
                db.close()

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    mode = sqlite3.connect(tmp_path / "0.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_lock_is_waited_out_and_any_other_error_raised_at_once() -> None:
    calls: list[str] = []

    def locked_twice(sql: str) -> None:
        calls.append(sql)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")

    enable_wal(locked_twice)
    assert calls == [WAL, WAL, WAL]

    def broken(sql: str) -> None:
        calls.append(sql)
        raise sqlite3.OperationalError("disk I/O error")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        enable_wal(broken)
    assert calls == [WAL]


def test_a_lock_that_outlasts_the_deadline_is_raised() -> None:
    def always_locked(sql: str) -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(always_locked, within=0.05)


async def test_the_asynchronous_switch_waits_out_a_lock_too() -> None:
    calls: list[str] = []

    async def locked_once(sql: str) -> None:
        calls.append(sql)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")

    await enable_wal_async(locked_once)
    assert calls == [WAL, WAL]
