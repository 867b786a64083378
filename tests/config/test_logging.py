"""Logs: JSON lines, bound context, personal data masked, secrets never written."""

from __future__ import annotations

import json
import time

import pytest
import structlog

from config.logging import configure, mask_text


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("mail jane.doe@example.com now", "jane.doe", "j***@example.com"),
        ("call +44 20 7946 0958 please", "7946", "+***58"),
        ("whatsapp:+14155550123", "4155550", "whatsapp:+***23"),
        ("ring (415) 555-0123", "555-0123", "***23"),
        ("from jöhn.döe@exämple.com today", "döe", "j***@exämple.com"),
        ("张伟@例子.公司 wrote", "张伟@", "张***@例子.公司"),
        ("mail ÉLODIE@Société.fr", "LODIE", "É***@Société.fr"),
        ("a@b.co c@d.org", "c@d", "a***@b.co c***@d.org"),
        ("call ＋４４ ２０ ７９４６ ０９５８", "７９４６", "+***５８"),
        ("call +٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", "٧٩٤٦", "+***٥٨"),
        (
            "POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
            "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "/bot[redacted]/sendMessage",
        ),
    ],
)
def test_mask_text(text: str, hidden: str, kept: str) -> None:
    masked = mask_text(text)
    assert hidden not in masked and kept in masked


@pytest.mark.parametrize(
    "text",
    [
        "order A1B2C3",
        "event 1700000000.123456",
        "2026-11-21",
        "took 12.5 ms",
        "@shop_bot hi",
        "user@localhost",
        "<@U024BE7LH> hello",
    ],
)
def test_mask_text_leaves_ids_and_dates(text: str) -> None:
    assert mask_text(text) == text


@pytest.fixture
def json_logs():
    configure("info", "json")
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


SHAPES = {
    "word characters": "a",
    "letters past ASCII": "ö",
    "dots": ".",
    "at signs": "@",
    "digits": "1",
    "mixed": "a.@1 -+",
    "addresses": "jo.doe@example.com ",
    "half addresses": "a@b.",
    "phone-like": "+1 (2) 3-",
}


def _per_kb(text: str) -> float:
    """Milliseconds per kilobyte to mask `text`, the best of three runs."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        mask_text(text)
        best = min(best, time.perf_counter() - start)
    return best * 1000 / (len(text) / 1024)


@pytest.mark.parametrize("unit", list(SHAPES.values()), ids=list(SHAPES))
def test_masking_is_linear_in_the_text(unit: str) -> None:
    """The e-mail pattern tried at every position was quadratic on a run of word characters:
    16 KB took about 0.3 s, a 1 MB log value would have taken minutes. Now a small text and a
    large one cost the same per kilobyte, well under a millisecond."""
    small = _per_kb(unit * (16_384 // len(unit)))
    assert small < 2.0, f"{small:.2f} ms/KB on 16 KB"
    large = _per_kb(unit * (1_048_576 // len(unit)))
    assert large < 2.0, f"{large:.2f} ms/KB on 1 MB"
