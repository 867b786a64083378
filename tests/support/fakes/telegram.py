"""A fake Telegram Bot API on loopback: the methods python-telegram-bot's `Bot` calls (getMe,
sendMessage, answerCallbackQuery, setWebhook, sendPhoto, sendDocument, sendLocation,
sendChatAction) under `/bot<token>/<method>`, and long polling as Telegram documents it:
`getUpdates` (offset confirms every update before it; waits up to `timeout` seconds for one;
409 while a webhook is set, and 409 to a poll cut short by another) and `deleteWebhook`. It
records every call and can be told to fail the next ones the way Telegram does (429 with
`parameters.retry_after`, 403 for a blocked bot) or to drop the next poll's connection."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.support.fakes import Sent, serve

BOT_TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

TELEGRAM_KEY: web.AppKey[FakeTelegram] = web.AppKey("fake_telegram")
_MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendLocation"})


@dataclass
class FakeTelegram:
    token: str
    username: str = "shop_test_bot"
    api_url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(method, parameters) of every accepted call, in order."""
    failures: list[tuple[int, dict[str, Any], str | None]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    webhook_url: str = ""
    """Set by setWebhook, cleared by deleteWebhook; getUpdates answers 409 while it is set."""
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Updates not yet confirmed by a getUpdates offset past them."""
    confirmed: int = 0
    """The highest offset a getUpdates has sent: updates below it are gone."""
    delivered: list[int] = field(default_factory=list)
    """update_id of every update handed out by getUpdates, redeliveries included."""
    conflicts: int = 0
    """getUpdates calls answered 409."""
    drop_polls: int = 0
    """How many next getUpdates calls lose their connection (network loss mid-poll)."""
    _next_update: itertools.count[int] = field(default_factory=lambda: itertools.count(500_001))
    _arrived: asyncio.Condition | None = None
    _poll_generation: int = 0

    def push(self, update: dict[str, Any]) -> int:
        """Hold `update` for getUpdates (an `update_id` is given when it has none)."""
        update = dict(update)
        update.setdefault("update_id", next(self._next_update))
        self.updates.append(update)
        if self._arrived is not None:
            asyncio.get_running_loop().create_task(_notify(self._arrived))
        return int(update["update_id"])

    @property
    def polls(self) -> int:
        """getUpdates calls begun: one begun after a batch was handed out means the poller
        had taken that batch."""
        return self._poll_generation

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    def fail_next(
        self,
        code: int,
        description: str,
        retry_after: int | None = None,
        method: str | None = None,
    ) -> None:
        """The next call of `method` fails; by default the next call of any method but getMe
        and the typing indicator (sendChatAction, a courtesy before each turn)."""
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self.failures.append((code, body, method))

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for m, params in self.calls if m == method]

    def sent(self) -> list[Sent]:
        return [_normalise(p) for p in self.called("sendMessage")]


async def _notify(cond: asyncio.Condition) -> None:
    async with cond:
        cond.notify_all()


async def get_updates(
    fake: FakeTelegram, params: dict[str, Any], request: web.Request
) -> web.Response:
    if fake.webhook_url:
        return _conflict(
            fake,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = int(params.get("offset") or 0)
    if offset:
        fake.confirmed = max(fake.confirmed, offset)
        fake.updates = [u for u in fake.updates if u["update_id"] >= offset]
    # A newer poll ends this one with a 409, as Telegram does with two pollers of one bot.
    fake._poll_generation += 1
    mine = fake._poll_generation
    if fake._arrived is None:
        fake._arrived = asyncio.Condition()
    timeout = float(params.get("timeout") or 0)
    async with fake._arrived:
        fake._arrived.notify_all()
        try:
            async with asyncio.timeout(timeout):
                await fake._arrived.wait_for(
                    lambda: bool(fake.updates) or fake._poll_generation != mine
                )
        except TimeoutError:
            pass
    if request.transport is None or request.transport.is_closing():
        return web.Response()  # the poller hung up (stopped, or gave the poll up): nobody reads
    if fake._poll_generation != mine:
        return _conflict(
            fake,
            "Conflict: terminated by other getUpdates request; make sure that only one "
            "bot instance is running",
        )
    limit = int(params.get("limit") or 100)
    batch = fake.updates[:limit]
    fake.delivered.extend(u["update_id"] for u in batch)
    return web.json_response({"ok": True, "result": batch})


def _conflict(fake: FakeTelegram, description: str) -> web.Response:
    fake.conflicts += 1
    return _refuse(409, description)


def _refuse(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )


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


def _failure_for(fake: FakeTelegram, method: str) -> tuple[int, dict[str, Any]] | None:
    for i, (status, body, only) in enumerate(fake.failures):
        if only == method or (only is None and method not in ("getMe", "sendChatAction")):
            del fake.failures[i]
            return status, body
    return None


async def api_method(request: web.Request) -> web.Response:
    fake = request.app[TELEGRAM_KEY]
    if request.match_info["token"] != fake.token:
        return web.json_response(
            {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
        )
    method = request.match_info["method"]
    failure = _failure_for(fake, method)
    if failure is not None:
        status, body = failure
        return web.json_response(body, status=status)
    params = await _params(request)
    if method == "getUpdates":
        if fake.drop_polls:
            fake.drop_polls -= 1
            assert request.transport is not None
            request.transport.abort()  # the connection is lost, no answer at all
            return web.Response()
        fake.calls.append((method, params))
        return await get_updates(fake, params, request)
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
    elif method in ("answerCallbackQuery", "sendChatAction"):
        result = True
    elif method == "setWebhook":
        fake.webhook_url = str(params.get("url", ""))
        result = True
    elif method == "deleteWebhook":
        fake.webhook_url = ""
        if params.get("drop_pending_updates") in (True, "true", "True"):
            fake.updates.clear()
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


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with running_fake_telegram(BOT_TOKEN) as fake:
        yield fake
