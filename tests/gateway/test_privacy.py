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
from core.forget import Customer
from core.models import ConversationRef, Sender
from core.review import trainfile
from core.session import Session
from core.sql.db import Database, database_url
from core.sql.store import SqlConversations
from core.sqlite.db import Database as SqliteDatabase
from core.sqlite.sessions import SqliteSessionStore
from core.sqlite.transcript import SqliteTranscript
from gateway.cli import main
from gateway.privacy import Retention, forget_customer
from gateway.storage import STATE_FILE, STATE_SCHEMA
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


async def test_forget_drops_the_customers_reviewed_examples_from_the_flows(tmp_path: Path) -> None:
    """A label from the review inbox copied the customer's words into flows/reviewed.yml: the
    erasure takes them out, and leaves other customers' examples and hand-written ones."""
    await recorded(tmp_path, "ana@example.com", time.time())
    await recorded(tmp_path, "bo@example.com", time.time())
    async with Database(database_url(None, tmp_path)) as db, db.engine.begin() as conn:
        sql = "SELECT t.id, c.chat_id FROM turns t JOIN conversations c ON c.id = t.conversation_id"
        rows = (await conn.execute(text(sql))).all()
    ids = {chat: int(turn_id) for turn_id, chat in rows}
    flows = tmp_path / "flows"
    flows.mkdir()
    path, lock = trainfile.file_in(flows), trainfile.lock_in(tmp_path)
    path.write_text("intents:\n  greet:\n    examples:\n      - hello there\n")
    for chat, turn_id in ids.items():
        entry = trainfile.Entry(
            "order_status", f"words of {chat}", "relabel", "rev", "2026-12-06T23:00:00Z", turn_id
        )
        trainfile.save(path, lock, entry)
    settings = load_settings(data_dir=tmp_path, flows_dir=flows, redis_url=None)
    erasure = await forget_customer(settings, Customer("telegram", "ana@example.com"))
    assert erasure.removed["reviewed examples"] == 1
    left = {e.text for e in trainfile.read(path)}
    assert left == {"hello there", "words of bo@example.com"}
    again = await forget_customer(settings, Customer("telegram", "ana@example.com"))
    assert again.removed["reviewed examples"] == 0
    assert trainfile.read(path) and "ana" not in path.read_text()


async def test_forget_erases_the_embedded_sessions_and_web_chat_transcripts(
    tmp_path: Path,
) -> None:
    """Without Redis a conversation's session and the web chat's history live in DATA_DIR's
    state file: the customer's go, and another customer's stay."""
    state = SqliteDatabase(tmp_path / STATE_FILE, STATE_SCHEMA)
    sessions, transcript = SqliteSessionStore(state, ttl=3600), SqliteTranscript(state, ttl=3600)
    for chat in ("visitor-ana", "visitor-bo"):
        await sessions.save(Session.new(ConversationRef(channel="webchat", chat_id=chat)))
        await transcript.add(f"webchat:{chat}", {"from": "customer", "text": f"hi from {chat}"})
    await state.close()
    settings = load_settings(data_dir=tmp_path, redis_url=None)
    erasure = await forget_customer(settings, Customer("webchat", "visitor-ana"))
    assert erasure.removed["sessions"] == 1
    assert erasure.removed["web chat transcript entries"] == 1
    state = SqliteDatabase(tmp_path / STATE_FILE, STATE_SCHEMA)
    try:
        left = await state.fetchall("SELECT key FROM sessions UNION SELECT entry FROM transcript")
        assert "ana" not in repr(left) and "visitor-bo" in repr(left)
    finally:
        await state.close()
