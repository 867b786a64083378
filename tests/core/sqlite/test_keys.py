"""The embedded default's keys on disk: claims of one-time credentials (shared by every process
on the file, kept across a restart), the queue's dedupe journal, expiry and its bounded sweep."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from core.errors import StoreUnavailable
from core.sqlite import keys as keys_module
from core.sqlite.keys import SqliteKeys


@pytest.fixture
def clock() -> list[float]:
    return [1_000_000.0]


def open_keys(path: Path, clock: list[float]) -> SqliteKeys:
    return SqliteKeys(path, clock=lambda: clock[0])


async def test_a_claim_holds_its_value_until_it_expires(tmp_path: Path, clock: list[float]) -> None:
    keys = open_keys(tmp_path / "k.sqlite3", clock)
    assert await keys.claim("mailgun:t1", "body-a", 10, 10)
    assert await keys.claim("mailgun:t1", "body-a", 10, 10), "the same delivery again: allowed"
    assert not await keys.claim("mailgun:t1", "body-b", 10, 10), "another body: a replay"
    clock[0] += 10.5
    assert await keys.claim("mailgun:t1", "body-b", 10, 10)
    await keys.close()


async def test_the_same_value_is_a_replay_once_the_retry_window_is_over(
    tmp_path: Path, clock: list[float]
) -> None:
    """Twilio signs no timestamp: a captured form is remembered for a week, and sent again
    after the dedupe has forgotten its event (the retry window), it is refused."""
    keys = open_keys(tmp_path / "k.sqlite3", clock)
    assert await keys.claim("whatsapp:sig", "form", 7 * 86400, 86400)
    clock[0] += 86399
    assert await keys.claim("whatsapp:sig", "form", 7 * 86400, 86400), "a platform retry"
    clock[0] += 2
    assert not await keys.claim("whatsapp:sig", "form", 7 * 86400, 86400), "a late replay"
    await keys.close()


async def test_claims_are_shared_by_every_process_on_the_file_and_kept_across_a_restart(
    tmp_path: Path, clock: list[float]
) -> None:
    path = tmp_path / "data" / "k.sqlite3"  # the folder is made on first use
    first, second = open_keys(path, clock), open_keys(path, clock)
    assert await first.claim("whatsapp:sig", "form-1", 60, 60)
    assert not await second.claim("whatsapp:sig", "form-2", 60, 60)
    await first.close()
    await second.close()
    again = open_keys(path, clock)
    assert not await again.claim("whatsapp:sig", "form-2", 60, 60)
    assert await again.claim("whatsapp:sig", "form-1", 60, 60)
    await again.close()


async def test_concurrent_claims_of_one_key_from_two_processes_give_one_winner(
    tmp_path: Path, clock: list[float]
) -> None:
    path = tmp_path / "k.sqlite3"
    stores = [open_keys(path, clock) for _ in range(4)]
    results = await asyncio.gather(
        *(s.claim(f"k{n}", f"value-{i}", 60, 60) for n in range(20) for i, s in enumerate(stores))
    )
    for n in range(20):
        assert sum(results[n * 4 : n * 4 + 4]) == 1, n
    for s in stores:
        await s.close()


async def test_recorded_keys_are_recalled_until_they_expire(
    tmp_path: Path, clock: list[float]
) -> None:
    path = tmp_path / "k.sqlite3"
    keys = open_keys(path, clock)
    await keys.record(["slack:Ev1", "slack:Ev2"], 100)
    clock[0] += 50
    await keys.record(["slack:Ev3"], 100)
    await keys.close()
    again = open_keys(path, clock)
    assert sorted(await again.recall()) == ["slack:Ev1", "slack:Ev2", "slack:Ev3"]
    clock[0] += 60
    assert await again.recall() == ["slack:Ev3"]
    await again.close()


async def test_expired_rows_are_deleted_a_bounded_number_per_write(
    tmp_path: Path, clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "SWEEP_ROWS", 10)
    keys = open_keys(tmp_path / "k.sqlite3", clock)
    await keys.record([f"old{i}" for i in range(25)], 5)
    clock[0] += 6
    await keys.record(["new"], 5)
    assert await keys.count() == 16, "ten expired rows went with the write, no more"
    await keys.claim("c", "v", 5, 5)
    await keys.record(["new2"], 5)
    assert await keys.count() == 3
    await keys.close()


async def test_the_disk_is_used_off_the_event_loop(tmp_path: Path, clock: list[float]) -> None:
    keys = open_keys(tmp_path / "k.sqlite3", clock)
    threads: set[str] = set()
    real = keys._conn

    def spy() -> sqlite3.Connection:
        threads.add(threading.current_thread().name)
        return real()

    keys._conn = spy  # type: ignore[method-assign]
    await keys.claim("a", "1", 10, 10)
    await keys.record(["b"], 10)
    await keys.recall()
    assert threads and all(t.startswith("sqlite-keys") for t in threads), threads
    assert threading.current_thread().name not in threads
    await keys.close()


async def test_a_broken_file_is_a_store_outage(tmp_path: Path, clock: list[float]) -> None:
    path = tmp_path / "k.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    keys = open_keys(path, clock)
    with pytest.raises(StoreUnavailable):
        await keys.claim("a", "1", 10, 10)
    await keys.close()


async def test_nothing_is_created_until_first_use(tmp_path: Path, clock: list[float]) -> None:
    keys = open_keys(tmp_path / "never" / "k.sqlite3", clock)
    await keys.close()
    assert not (tmp_path / "never").exists()
