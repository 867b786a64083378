"""`gateway forget` and the daily retention over the embedded conversation store (the SQLite
file in DATA_DIR, opened by the command itself): counts per place, nothing found the second
time, records past RETENTION_DAYS deleted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from config.settings import load_settings
from core.models import Sender
from core.sql.db import Database, database_url
from core.sql.store import SqlConversations
from gateway.cli import main
from gateway.privacy import Retention
from tests.core.sql.test_forget import turn


async def recorded(data_dir: Path, who: str, at: float) -> None:
    async with Database(database_url(None, data_dir)) as db:
        await SqlConversations(db).record_turn(turn(Sender(id=who), 1, at))


def test_forget_reaches_the_embedded_conversation_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    asyncio.run(recorded(tmp_path, "ana@example.com", time.time()))
    argv = ["forget", "--channel", "telegram", "--user", "ana@example.com", "--log-level", "error"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "removed 1 conversations" in out and "removed 2 messages" in out
    assert "removed 1 turns" in out
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("nothing was found")


async def test_retention_sweeps_the_embedded_conversation_store(tmp_path: Path) -> None:
    await recorded(tmp_path, "old@example.com", 1000.0)
    await recorded(tmp_path, "new@example.com", time.time())
    async with Database(database_url(None, tmp_path)) as db, db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE conversations SET updated_at = 1000 WHERE chat_id LIKE 'old%'")
        )
    settings = load_settings(data_dir=tmp_path, retention_days=30, redis_url=None)
    removed = await Retention(settings, every=3600).sweep()
    assert removed["conversations"] == 1 and removed["messages"] == 2
    async with Database(database_url(None, tmp_path)) as db:
        store = SqlConversations(db)
        assert await store.by_key("telegram:new@example.com") is not None
        assert await store.by_key("telegram:old@example.com") is None
