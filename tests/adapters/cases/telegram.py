"""The Telegram case of the contract: updates with the secret-token header, the fake Bot API."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from tests.adapters.contract import Golden, Request, json_goldens
from tests.support.fakes import FakePlatform
from tests.support.fakes.telegram import BOT_TOKEN, FakeTelegram, running_fake_telegram

SECRET_TOKEN = "test-secret_token-1"
BOT_USERNAME = "shop_test_bot"
JSON = {"Content-Type": "application/json"}


def update_id(event: str) -> int:
    return zlib.crc32(event.encode()) % 2**31


def text_update(text: str, *, chat: str, event: str) -> dict[str, Any]:
    user = {"id": int(chat), "is_bot": False, "first_name": "Ada", "language_code": "en"}
    return {
        "update_id": update_id(event),
        "message": {
            "message_id": update_id(event) % 100000,
            "from": user,
            "chat": {"id": int(chat), "first_name": "Ada", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }


def _encode(fixture: dict[str, Any]) -> Request:
    return Request(json.dumps(fixture["body"]).encode(), dict(JSON))


class TelegramCase:
    name = "telegram"
    chat = "1111111"

    def fake(self) -> AbstractAsyncContextManager[FakeTelegram]:
        return running_fake_telegram(BOT_TOKEN)

    def settings(self, fake: FakePlatform) -> dict[str, Any]:
        assert isinstance(fake, FakeTelegram)
        return {
            "telegram_bot_token": BOT_TOKEN,
            "telegram_secret_token": SECRET_TOKEN,
            "telegram_api_url": fake.api_url,
            "telegram_bot_username": BOT_USERNAME,
        }

    def message(self, text: str, *, chat: str, event: str) -> Request:
        return Request(json.dumps(text_update(text, chat=chat, event=event)).encode(), dict(JSON))

    def malformed(self) -> Request:
        return Request(b'{"update_id": 1, "message": {"chat": ', dict(JSON))

    def sign(self, req: Request) -> Request:
        return req.with_headers(**{"X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN})

    def forge(self, req: Request) -> Request:
        return req.with_headers(**{"X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN + "x"})

    def stale(self, req: Request) -> Request | None:
        return None  # Telegram signs nothing with a time; a replay is caught by update_id

    def goldens(self) -> Sequence[Golden]:
        return json_goldens("telegram", _encode)


CASE = TelegramCase()
