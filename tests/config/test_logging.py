"""Logs: JSON lines, bound context, personal data masked (the masking itself: tests/core/
test_redact.py), secrets never written."""

from __future__ import annotations

import json

import pytest
import structlog

from config.logging import configure
from core.redact import mask


@pytest.fixture
def json_logs():
    configure("info", "json", mask=mask)
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("json_logs")
def test_json_lines_with_context_masking_and_redaction(capsys: pytest.CaptureFixture[str]) -> None:
    log = structlog.get_logger("t")
    with structlog.contextvars.bound_contextvars(
        channel="whatsapp", conversation="whatsapp:+14155550123", event_id="SM123"
    ):
        log.info(
            "turn", sender="bob@example.org", slack_bot_token="xoxb-1", nested={"password": "p"}
        )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert (
        event["event"] == "turn" and event["channel"] == "whatsapp" and event["event_id"] == "SM123"
    )
    assert event["conversation"] == "whatsapp:+***23"
    assert event["sender"] == "b***@example.org"
    assert event["slack_bot_token"] == "[redacted]"
    assert event["nested"] == {"password": "[redacted]"}
    assert "xoxb-1" not in line and "14155550123" not in line


@pytest.mark.usefixtures("json_logs")
def test_a_logged_exception_is_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    token = "123456789:" + "A" * 35
    try:
        raise RuntimeError(f"https://api.telegram.org/bot{token}/sendMessage for bob@example.org")
    except RuntimeError as exc:
        structlog.get_logger("t").error("turn.failed", exc_info=exc)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert "RuntimeError" in event["exception"] and "b***@example.org" in event["exception"]
    assert token not in line and "bob@example.org" not in line
