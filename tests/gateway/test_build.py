"""`build_gateway(settings, role)`: the parts each role runs, the commands that build through it,
and a stop or start that fails in one real part while the others are still closed."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from config.settings import Settings, load_settings
from core.models import ConversationRef, Inbound, Sender
from gateway.build import build_gateway
from gateway.cli import main
from gateway.lifecycle import StopFailed
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel
from tests.support.redis_server import free_port

DESK = "support desk"  # the conversation store and console, not in the terminal chat
RETENTION = "retention"  # of the conversation store's old records, daily
STORAGE = ["storage connection", "web chat transcript", "session store", "queue"]


def doubles() -> dict[str, Any]:
    return {"nlu": KeywordNlu(), "dialogue": EchoDialogue()}


def mail_settings(tmp_path: Path, **extra: Any) -> Settings:
    """E-mail on and an SMTP listener asked for."""
    return Settings(
        data_dir=tmp_path,
        smtp_host="127.0.0.1",
        email_from="help@shop.example",
        smtp_listen_port=free_port(),
        **extra,
    )


def test_serve_runs_the_listeners_and_the_worker_unless_told_otherwise(tmp_path: Path) -> None:
    serve = build_gateway(mail_settings(tmp_path), "serve", **doubles())
    channels = ["channel webchat", "channel email"]
    assert serve.part_names == [*STORAGE, DESK, *channels, "smtp listener", RETENTION, "engine"]
    apart = build_gateway(mail_settings(tmp_path), "serve", with_worker=False, **doubles())
    assert apart.part_names == [*STORAGE, DESK, *channels, "smtp listener", RETENTION]
    assert apart.engine is None


def test_worker_and_chat_always_run_the_engine_and_no_listener(tmp_path: Path) -> None:
    settings = mail_settings(tmp_path, embedded_worker="off")
    worker = build_gateway(settings, "worker", probe_port=free_port(), **doubles())
    assert worker.part_names == [
        *STORAGE,
        DESK,
        "channel webchat",
        "channel email",
        RETENTION,
        "engine",
        "probe",
    ]
    terminal = RecordingChannel()
    chat = build_gateway(settings, "chat", channels={terminal.name: terminal}, **doubles())
    assert chat.part_names == [
        *STORAGE,
        "channel webchat",
        "channel email",
        "channel test",
        "engine",
    ]


def test_intent_parser_and_dialogue_come_together() -> None:
    with pytest.raises(TypeError):
        build_gateway(Settings(), "serve", nlu=KeywordNlu())


class Built(Exception):
    """Raised by the spy once the command has asked for its gateway."""


@pytest.mark.parametrize("command", ["serve", "worker", "chat"])
def test_each_command_builds_through_build_gateway(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(f"gateway.commands.{command}")
    settings = load_settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    asked: list[tuple[Settings, str]] = []

    def spy(given: Settings, role: str, **_: Any) -> Any:
        asked.append((given, role))
        raise Built

    # Settings without the command's logging set-up (it would outlive this test).
    monkeypatch.setattr(module, "settings_from", lambda *_, **__: settings)
    monkeypatch.setattr(module, "build_gateway", spy)
    with pytest.raises(Built):
        main([command])
    assert asked == [(settings, command)]


def inbound(event: str) -> Inbound:
    conv = ConversationRef(channel="test", chat_id="c1")
    return Inbound(event_id=event, conversation=conv, sender=Sender(id="u"), text="hi")


async def test_a_channel_that_fails_to_close_leaves_the_rest_closed(tmp_path: Path) -> None:
    first, last = RecordingChannel("first"), RecordingChannel("last")
    services = build_gateway(
        Settings(data_dir=tmp_path),
        "serve",
        with_worker=False,
        channels={
            "first": first,
            "bad": RecordingChannel("bad", fail_close=OSError("socket already gone")),
            "last": last,
        },
        **doubles(),
    )
    with structlog.testing.capture_logs() as logs, pytest.raises(StopFailed) as caught:
        async with services.running():
            assert await services.storage.queue.put(inbound("e1"))
    assert [str(e) for e in caught.value.exceptions] == ["socket already gone"]
    assert first.closed and last.closed
    # The queue closed after the failure too: what nobody took was spilled to disk.
    assert "e1" in (tmp_path / "queue-spill.jsonl").read_text()
    failed = [e for e in logs if e["event"] == "gateway.part_stop_failed"]
    assert [e["part"] for e in failed] == ["channel bad"]


async def test_a_channel_that_fails_to_start_stops_what_had_started(tmp_path: Path) -> None:
    first, last = RecordingChannel("first"), RecordingChannel("last")
    broken = RecordingChannel("broken", fail_start=ConnectionError("broken cannot connect"))
    services = build_gateway(
        Settings(data_dir=tmp_path),
        "serve",
        channels={"first": first, "broken": broken, "last": last},
        **doubles(),
    )
    with pytest.raises(ConnectionError, match="broken cannot connect"):
        async with services.running():
            raise AssertionError("started with a broken channel")
    assert first.started and first.closed
    assert not last.started and not last.closed
    assert services.engine is not None and not services.engine.running


async def test_a_workers_probe_answers_while_it_runs_and_closes_with_it(tmp_path: Path) -> None:
    port = free_port()
    services = build_gateway(Settings(data_dir=tmp_path), "worker", probe_port=port, **doubles())
    async with aiohttp.ClientSession() as http:
        async with services.running(), http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"http://127.0.0.1:{port}/healthz"):
                pass
