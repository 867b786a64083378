"""Settings: YAML defaults, environment overrides, secrets from the environment only, and one
clear line for a user's mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_come_from_the_yaml_file() -> None:
    s = load_settings()
    assert s.port == 8080 and s.host == "127.0.0.1"
    assert s.redis_url is None and s.slack_bot_token is None


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    s = load_settings()
    assert s.port == 9123
    assert s.slack_bot_token is not None
    assert s.slack_bot_token.get_secret_value() == "xoxb-secret"
    assert "xoxb-secret" not in repr(s)


def test_gateway_config_points_at_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text("port: 7001\nconcurrency: 3\n")
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    s = load_settings()
    assert (s.port, s.concurrency) == (7001, 3)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("slack_bot_token: xoxb-1\n", "SLACK_BOT_TOKEN is a secret"),
        ("prot: 80\n", "PROT: unknown setting"),
        ("port: [1\n", "not valid YAML"),
        ("port: 99999\n", "PORT: Input should be less than or equal to 65535"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_mistakes_in_the_file_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, expected: str
) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(content)
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    with pytest.raises(SettingsError, match=expected):
        load_settings()


def test_missing_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsError, match=r"GATEWAY_CONFIG: .*nope\.yaml does not exist"):
        load_settings()


def test_cli_prints_one_line_and_no_traceback() -> None:
    env = {**os.environ, "PORT": "eighty"}
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("gateway: PORT: ") and "'eighty'" in lines[0]
    assert "Traceback" not in out.stderr


def test_secret_values_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PORT", "not-a-port")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "SMTP_PORT" in str(err.value) and "hunter2" not in str(err.value)


def test_allowed_origins_are_a_list_of_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBCHAT_ALLOWED_ORIGINS", "https://Shop.example/, http://localhost:8080")
    assert load_settings().webchat_allowed_origins == (
        "https://shop.example",
        "http://localhost:8080",
    )
    monkeypatch.setenv("WEBCHAT_ALLOWED_ORIGINS", "shop.example")
    with pytest.raises(SettingsError, match=r"WEBCHAT_ALLOWED_ORIGINS: .*not an origin"):
        load_settings()


def test_the_web_chat_look_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBCHAT_TITLE", "  Acme Help  ")
    monkeypatch.setenv("WEBCHAT_COLOR", "#0A7C4B")
    s = load_settings()
    assert (s.webchat_title, s.webchat_color) == ("Acme Help", "#0A7C4B")
    for name, value, reason in [
        ("WEBCHAT_COLOR", "green", "pattern"),
        ("WEBCHAT_COLOR", "#0a7c4", "pattern"),
        ("WEBCHAT_COLOR", "#0a7c4b; background: url(x)", "pattern"),
        ("WEBCHAT_TITLE", "Acme\nHelp", "one line"),
        ("WEBCHAT_TITLE", "x" * 61, "at most 60"),
        ("WEBCHAT_WELCOME", "   ", "one line"),
    ]:
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(SettingsError, match=rf"{name}: .*{reason}"):
                load_settings()


def test_the_tokens_alone_choose_the_way_in_that_needs_no_public_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-2")
    alone = load_settings()
    assert (alone.telegram_mode, alone.slack_mode) == ("polling", "socket")
    # A webhook's secret says the platform calls us; a mode set says so too.
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", "s3cret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "shh")
    hooked = load_settings()
    assert (hooked.telegram_mode, hooked.slack_mode) == ("webhook", "webhook")
    monkeypatch.delenv("TELEGRAM_SECRET_TOKEN")
    monkeypatch.setenv("TELEGRAM_MODE", "webhook")
    assert load_settings().telegram_mode == "webhook"
