"""`telegram set-webhook URL`: register the gateway's webhook with Telegram, with the secret
token Telegram then sends on every update (TELEGRAM_SECRET_TOKEN)."""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import Any

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

import adapters.telegram  # noqa: F401 - keeps the token-bearing httpx request lines out of logs
from config.settings import Settings
from core.errors import StartupError
from gateway.commands._common import add_log_level, settings_from

ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
"""What the adapter reads; Telegram then sends nothing else (channel posts, polls...)."""
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "telegram",
        help="Telegram set-up: register the webhook",
        description="Talk to the Telegram Bot API (TELEGRAM_API_URL) with TELEGRAM_BOT_TOKEN.",
    )
    tsub = p.add_subparsers(dest="telegram_command", metavar="ACTION", required=True)
    hook = tsub.add_parser(
        "set-webhook",
        help="register URL as the bot's webhook, with TELEGRAM_SECRET_TOKEN",
        description=(
            "Register URL (the public https address of POST /webhooks/telegram, e.g. "
            "https://bot.example.com/webhooks/telegram) as the bot's webhook. Telegram will send "
            "TELEGRAM_SECRET_TOKEN in X-Telegram-Bot-Api-Secret-Token with every update, and "
            f"only these update kinds: {', '.join(ALLOWED_UPDATES)}."
        ),
    )
    hook.add_argument("url", metavar="URL", help="public URL of /webhooks/telegram")
    hook.add_argument(
        "--drop-pending-updates",
        action="store_true",
        help="discard the updates Telegram holds for the bot instead of delivering them",
    )
    add_log_level(hook)
    hook.set_defaults(func=run_set_webhook)


def run_set_webhook(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    asyncio.run(set_webhook(settings, args.url, drop_pending=args.drop_pending_updates))
    print(f"webhook set: {args.url} (updates: {', '.join(ALLOWED_UPDATES)})")
    return 0


async def set_webhook(settings: Settings, url: str, *, drop_pending: bool = False) -> None:
    """Raises `StartupError` saying what to fix; never shows the token."""
    if settings.telegram_bot_token is None or settings.telegram_secret_token is None:
        raise StartupError("set TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN in the environment")
    secret = settings.telegram_secret_token.get_secret_value()
    if not _SECRET.match(secret):
        raise StartupError(
            "TELEGRAM_SECRET_TOKEN must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
            "(Telegram's rule for secret_token)"
        )
    if not url.startswith(("https://", "http://")):
        raise StartupError(f"URL must be the https address of /webhooks/telegram (got {url!r})")
    bot = Bot(settings.telegram_bot_token.get_secret_value(), base_url=settings.telegram_api_url)
    try:
        async with bot:
            await bot.set_webhook(
                url=url,
                secret_token=secret,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending,
            )
    except InvalidToken:
        raise StartupError(
            "Telegram rejected TELEGRAM_BOT_TOKEN; copy it again from @BotFather"
        ) from None
    except TelegramError as exc:
        raise StartupError(
            f"Telegram refused the webhook: {exc.message} (API {settings.telegram_api_url})"
        ) from None
