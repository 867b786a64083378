"""Sessions in the embedded SQLite file: kept across a restart (a new store on the same file),
expired after SESSION_TTL from the last save, expired rows swept, an outage a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import StoreUnavailable
from core.models import ConversationRef
from core.session import Frame, Session
from core.sqlite import sessions as sessions_module
from core.sqlite.db import Database
from core.sqlite.sessions import SCHEMA, SqliteSessionStore


def open_store(path: Path, clock: list[float], ttl: float = 10.0) -> SqliteSessionStore:
    return SqliteSessionStore(Database(path, SCHEMA), ttl=ttl, clock=lambda: clock[0])


def session(chat: str) -> Session:
    s = Session.new(ConversationRef(channel="webchat", chat_id=chat))
    s.stack.append(Frame(flow="refund", step=2, slots={"order_id": "A1B2C3"}, asking="reason"))
    return s


async def test_a_session_outlives_its_store(tmp_path: Path) -> None:
    clock = [1000.0]
    store = open_store(tmp_path / "s.sqlite3", clock)
    await store.save(session("a"))
    await store.close()
    again = open_store(tmp_path / "s.sqlite3", clock)
    loaded = await again.load("webchat:a")
    assert loaded is not None and loaded.stack[0].asking == "reason"
    assert loaded.stack[0].slots == {"order_id": "A1B2C3"}
    assert await again.load("webchat:other") is None
    await again.delete("webchat:a")
    assert await again.load("webchat:a") is None
    await again.close()


async def test_a_session_expires_ttl_seconds_after_its_last_save(tmp_path: Path) -> None:
    clock = [1000.0]
    store = open_store(tmp_path / "s.sqlite3", clock)
    await store.save(session("a"))
    clock[0] = 1009.0
    await store.save(session("a"))
    clock[0] = 1018.9
    assert await store.load("webchat:a") is not None
    clock[0] = 1019.0
    assert await store.load("webchat:a") is None
    await store.close()


async def test_expired_rows_are_swept_a_bounded_batch_per_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_module, "SWEEP_ROWS", 30)
    clock = [1000.0]
    store = open_store(tmp_path / "s.sqlite3", clock)
    for i in range(100):
        await store.save(session(f"v{i}"))
    clock[0] = 2000.0  # all expired: nobody came back
    await store.save(session("new"))
    assert await store.count() == 100 - 30 + 1
    for i in range(3):
        await store.save(session(f"later{i}"))
    assert await store.count() == 4
    await store.close()


async def test_a_session_of_another_format_starts_over(tmp_path: Path) -> None:
    clock = [1000.0]
    store = open_store(tmp_path / "s.sqlite3", clock)
    old = session("a")
    old.format = 0
    await store.save(old)
    assert await store.load("webchat:a") is None
    await store.close()


async def test_an_unusable_file_is_a_store_outage(tmp_path: Path) -> None:
    (tmp_path / "s.sqlite3").write_bytes(b"not a database, " * 512)  # damaged
    store = open_store(tmp_path / "s.sqlite3", [1000.0])
    with pytest.raises(StoreUnavailable, match=r"s\.sqlite3"):
        await store.save(session("a"))
    with pytest.raises(StoreUnavailable):
        await store.load("webchat:a")
    await store.close()
