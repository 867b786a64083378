"""A fake Telegram Bot API on loopback: the methods python-telegram-bot's `Bot` calls (getMe,
sendMessage, answerCallbackQuery, setWebhook, sendPhoto, sendDocument, sendLocation) under
`/bot<token>/<method>`. It records every call and can be told to fail the next ones the way
Telegram does (429 with `parameters.retry_after`, 403 for a blocked bot)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.adapters.contract import Sent, serve

TELEGRAM_KEY: web.AppKey[FakeTelegram] = web.AppKey("fake_telegram")
_MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendLocation"})


@dataclass
class FakeTelegram:
    token: str
    username: str = "shop_test_bot"
    api_url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(method, parameters) of every accepted call, in order."""
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    def fail_next(self, code: int, description: str, retry_after: int | None = None) -> None:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self.failures.append((code, body))

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for m, params in self.calls if m == method]

    def sent(self) -> list[Sent]:
        return [_normalise(p) for p in self.called("sendMessage")]


def _normalise(params: dict[str, Any]) -> Sent:
    markup = params.get("reply_markup") or {}
    buttons = tuple(
        (b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row
    )
    thread = params.get("message_thread_id")
    return Sent(
        chat_id=str(params["chat_id"]),
        text=params.get("text", ""),
        buttons=buttons,
        thread_id=str(thread) if thread is not None else None,
    )


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        return dict(data)
    form = await request.post()
    out: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):  # an uploaded file
            out[key] = {"filename": value.filename}
            continue
        try:
            out[key] = json.loads(value) if value[:1] in "[{" else value
        except ValueError:
            out[key] = value
    return out


def _message(fake: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
    chat = params.get("chat_id", "0")
    return {
        "message_id": next(fake._ids),
        "date": int(time.time()),
        "chat": {"id": int(chat) if str(chat).lstrip("-").isdigit() else 0, "type": "private"},
        "from": {"id": fake.bot_id, "is_bot": True, "first_name": "Shop"},
        "text": params.get("text", ""),
    }


async def api_method(request: web.Request) -> web.Response:
    fake = request.app[TELEGRAM_KEY]
    if request.match_info["token"] != fake.token:
        return web.json_response(
            {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
        )
    method = request.match_info["method"]
    if fake.failures and method != "getMe":
        status, body = fake.failures.pop(0)
        return web.json_response(body, status=status)
    params = await _params(request)
    result: Any
    if method == "getMe":
        result = {
            "id": fake.bot_id,
            "is_bot": True,
            "first_name": "Shop",
            "username": fake.username,
        }
    elif method in _MESSAGE_METHODS:
        if method == "sendMessage" and not str(params.get("text", "")).strip():
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                },
                status=400,
            )
        result = _message(fake, params)
    elif method in ("answerCallbackQuery", "setWebhook", "deleteWebhook"):
        result = True
    else:
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )
    fake.calls.append((method, params))
    return web.json_response({"ok": True, "result": result})


@asynccontextmanager
async def running_fake_telegram(token: str) -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(token=token)
    app = web.Application()
    app[TELEGRAM_KEY] = fake
    app.router.add_post("/bot{token}/{method}", api_method)
    async with serve(app) as base:
        fake.api_url = base + "/bot"
        yield fake
