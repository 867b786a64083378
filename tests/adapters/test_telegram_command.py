"""`python -m gateway telegram set-webhook URL` against the fake Bot API, as a real process."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.adapters.cases.telegram import BOT_TOKEN, SECRET_TOKEN
from tests.support.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
URL = "https://bot.example.com/webhooks/telegram"


async def gateway(*args: str, **env: str) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        cwd=ROOT,
        env={**base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 180)
    except BaseException:
        # A process that outlived the wait is ended, and its pipes read to the end, here: left
        # to the garbage collector they would be reported against whichever test runs next.
        proc.kill()
        await proc.communicate()
        raise
    # The exit status is the callers' to check (0, or 2 for a refusal); `wait()` gives it as an
    # int (the process has ended: `communicate()` returned).
    return await proc.wait(), out.decode(), err.decode()


async def test_set_webhook_registers_the_url_with_the_secret(fake_telegram: FakeTelegram):
    code, out, err = await gateway(
        "telegram",
        "set-webhook",
        URL,
        "--drop-pending-updates",
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        TELEGRAM_SECRET_TOKEN=SECRET_TOKEN,
        TELEGRAM_API_URL=fake_telegram.api_url,
    )
    assert code == 0, err
    assert URL in out
    (call,) = fake_telegram.called("setWebhook")
    assert call["url"] == URL and call["secret_token"] == SECRET_TOKEN
    assert call["allowed_updates"] == ["message", "edited_message", "callback_query"]
    assert call["drop_pending_updates"] in (True, "true", "True")


async def test_a_rejected_token_is_one_line_without_the_token(fake_telegram: FakeTelegram):
    wrong = "7000000001:WRONGWRONGWRONG"
    code, _, err = await gateway(
        "telegram",
        "set-webhook",
        URL,
        TELEGRAM_BOT_TOKEN=wrong,
        TELEGRAM_SECRET_TOKEN=SECRET_TOKEN,
        TELEGRAM_API_URL=fake_telegram.api_url,
    )
    assert code == 2
    assert "rejected TELEGRAM_BOT_TOKEN" in err and wrong not in err
    assert len(err.strip().splitlines()) == 1


async def test_missing_settings_and_bad_secrets_are_named():
    code, _, err = await gateway("telegram", "set-webhook", URL)
    assert code == 2 and "TELEGRAM_BOT_TOKEN" in err
    code, _, err = await gateway(
        "telegram",
        "set-webhook",
        URL,
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        TELEGRAM_SECRET_TOKEN="has spaces!",
    )
    assert code == 2 and "TELEGRAM_SECRET_TOKEN must be" in err
