"""The web chat's transcript in the embedded SQLite file: numbered entries a page asks for
after the last it has, kept across a restart, expiring with the conversation, bounded."""

from __future__ import annotations

from pathlib import Path

from core.sqlite.db import Database
from core.sqlite.transcript import SCHEMA, SqliteTranscript


def open_transcript(path: Path, clock: list[float], keep: int = 200) -> SqliteTranscript:
    return SqliteTranscript(Database(path, SCHEMA), ttl=10.0, keep=keep, clock=lambda: clock[0])


async def test_entries_are_numbered_and_read_after_a_number(tmp_path: Path) -> None:
    clock = [1000.0]
    t = open_transcript(tmp_path / "t.sqlite3", clock)
    a1 = await t.add("webchat:a", {"from": "user", "text": "hi", "id": "m1"})
    b1 = await t.add("webchat:b", {"from": "user", "text": "other visitor"})
    a2 = await t.add("webchat:a", {"from": "bot", "text": "Hello! ✨", "buttons": []})
    assert a1 < b1 < a2
    assert await t.since("webchat:a") == [
        {"from": "user", "text": "hi", "id": "m1", "seq": a1},
        {"from": "bot", "text": "Hello! ✨", "buttons": [], "seq": a2},
    ]
    assert [e["seq"] for e in await t.since("webchat:a", after=a1)] == [a2]
    assert await t.since("webchat:a", after=a2) == []
    assert [e["text"] for e in await t.since("webchat:a", limit=1)] == ["Hello! ✨"]
    await t.close()


async def test_kept_across_a_restart_and_numbers_never_go_back(tmp_path: Path) -> None:
    clock = [1000.0]
    t = open_transcript(tmp_path / "t.sqlite3", clock)
    first = await t.add("webchat:a", {"text": "before the restart"})
    await t.close()
    again = open_transcript(tmp_path / "t.sqlite3", clock)
    assert [e["text"] for e in await again.since("webchat:a")] == ["before the restart"]
    clock[0] = 2000.0  # the conversation expired; every row is swept by the next write
    assert await again.since("webchat:a") == []
    later = await again.add("webchat:a", {"text": "a new conversation"})
    assert later > first, "a page that saw `first` would take a reused number as seen"
    assert [e["text"] for e in await again.since("webchat:a")] == ["a new conversation"]
    await again.close()


async def test_a_conversation_expires_together_after_its_last_entry(tmp_path: Path) -> None:
    clock = [1000.0]
    t = open_transcript(tmp_path / "t.sqlite3", clock)
    await t.add("webchat:a", {"text": "one"})
    clock[0] = 1008.0
    await t.add("webchat:a", {"text": "two"})
    clock[0] = 1017.0  # 17 s after the first entry, 9 after the last: all still there
    assert [e["text"] for e in await t.since("webchat:a")] == ["one", "two"]
    clock[0] = 1018.0
    assert await t.since("webchat:a") == []
    await t.close()


async def test_only_the_newest_entries_are_kept(tmp_path: Path) -> None:
    clock = [1000.0]
    t = open_transcript(tmp_path / "t.sqlite3", clock, keep=5)
    for i in range(12):
        await t.add("webchat:a", {"text": str(i)})
    assert [e["text"] for e in await t.since("webchat:a")] == ["7", "8", "9", "10", "11"]
    await t.close()
