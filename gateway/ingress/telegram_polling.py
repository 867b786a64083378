"""Telegram without a public URL (TELEGRAM_MODE=polling): the Bot API's `getUpdates` with a long
timeout, each update through the adapter's parse and the queue like a webhook's, the offset
moved past an update (which is what tells Telegram it was received) only once it is queued.

Telegram refuses `getUpdates` while a webhook is set, so the webhook is deleted on start. With
Redis, several `serve` processes share one bot: a lease lets exactly one poll (two pollers
would take turns getting 409s), the others stand by and take over when it lapses."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import orjson
import structlog

from core.channel import PayloadError
from core.errors import QueueUnavailable
from core.tasks import BackgroundTask
from gateway.ingress.backoff import Backoff, sleep_unless
from gateway.ingress.intake import Intake, platform_request
from gateway.ingress.lease import RedisLease

log = structlog.get_logger(__name__)

ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
"""The same kinds `telegram set-webhook` asks for."""


class BotApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: float | None = None):
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


class TelegramPollingIngress(BackgroundTask):
    """`async with TelegramPollingIngress(...)`: polling (or standing by for the lease) from
    enter to exit. On exit the long poll in flight is abandoned (nothing it brought had been
    confirmed, so Telegram keeps it) and the lease is given back at once."""

    task_name = "telegram-polling"

    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        intake: Intake,
        lease: RedisLease | None = None,
        poll_timeout: float = 25.0,
        backoff_ceiling: float = 30.0,
    ) -> None:
        super().__init__()
        self._base = f"{api_url}{token}/"
        self._intake = intake
        self._lease = lease
        self._poll_timeout = poll_timeout
        self._ceiling = backoff_ceiling
        self._session: aiohttp.ClientSession | None = None
        self.offset: int | None = None
        """The next update id to ask for: every update before it is queued."""
        self.polling = asyncio.Event()
        """Set while this process holds the lease (or needs none) and polls."""

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession()

    async def _close(self) -> None:
        if self._lease is not None:
            await self._lease.release()
        if self._session is not None:
            await self._session.close()
        log.info("telegram.polling_stopped", offset=self.offset)

    # -- the lease -------------------------------------------------------------------------

    async def _run(self) -> None:
        if self._lease is None:
            await self._poll()
            return
        lease = self._lease
        renew_every = lease.ttl_ms / 3000
        standing_by = False
        while not self._stopping.is_set():
            if not await lease.acquire():
                if not standing_by:
                    log.info("telegram.polling_standby", reason="another process holds the lease")
                    standing_by = True
                await sleep_unless(self._stopping, renew_every)
                continue
            standing_by = False
            log.info("telegram.polling_lease_taken", lease=lease.key)
            poll = asyncio.create_task(self._poll())
            try:
                while not poll.done():
                    await asyncio.wait({poll}, timeout=renew_every)
                    if not poll.done() and not await lease.renew():
                        log.warning("telegram.polling_lease_lost", lease=lease.key)
                        break
            finally:
                self.polling.clear()
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll

    # -- polling ---------------------------------------------------------------------------

    async def _poll(self) -> None:
        backoff = Backoff(self._stopping, ceiling=self._ceiling)
        failing: str | None = None  # the kind of failure already logged, for one line a streak
        webhook_deleted = False
        while not self._stopping.is_set():
            try:
                if not webhook_deleted:
                    await self._call("deleteWebhook", {"drop_pending_updates": False})
                    log.info(
                        "telegram.webhook_deleted",
                        reason="TELEGRAM_MODE=polling: Telegram refuses getUpdates while a "
                        "webhook is set",
                    )
                    webhook_deleted = True
                    self.polling.set()
                updates = await self._get_updates()
            except BotApiError as exc:
                kind = f"{exc.code}"
                if failing != kind:
                    log.warning("telegram.polling_refused", **_explain(exc))
                failing = kind
                if not await backoff.wait(exc.retry_after or 0.0):
                    return
                continue
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                if failing != "network":
                    log.warning("telegram.polling_unreachable", error=type(exc).__name__)
                failing = "network"
                if not await backoff.wait():
                    return
                continue
            if failing is not None:
                log.info("telegram.polling_resumed")
                failing = None
            backoff.reset()
            if not await self._take(updates) and not await backoff.wait():
                return

    async def _get_updates(self) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "timeout": int(self._poll_timeout),
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        if self.offset is not None:
            params["offset"] = self.offset
        result = await self._call("getUpdates", params, read_timeout=self._poll_timeout + 10)
        if not isinstance(result, list):
            raise ValueError("getUpdates result is not a list")
        return [u for u in result if isinstance(u, dict)]

    async def _take(self, updates: list[dict[str, Any]]) -> bool:
        """Queue each update in order, moving the offset past it once it is queued (or refused
        as malformed: asking for it again would bring the same refusal for ever). False when
        the queue could not take one: the rest wait for the next `getUpdates`."""
        for update in updates:
            update_id = update.get("update_id")
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                continue  # nothing to move the offset past: Telegram numbers every update
            try:
                await self._intake.take(platform_request(orjson.dumps(update)))
            except PayloadError as exc:
                self._intake.metrics.rejected.labels(
                    channel=self._intake.channel.name, reason="malformed"
                ).inc()
                log.warning("telegram.update_refused", update_id=update_id, reason=str(exc))
            except (QueueUnavailable, TimeoutError) as exc:
                log.error(
                    "telegram.enqueue_failed", update_id=update_id, error=str(exc) or "timeout"
                )
                return False
            self.offset = max(self.offset or 0, update_id + 1)
        return True

    async def _call(self, method: str, params: dict[str, Any], read_timeout: float = 30.0) -> Any:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=read_timeout + 10, sock_connect=10)
        async with self._session.post(self._base + method, json=params, timeout=timeout) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                raise BotApiError(resp.status, "answer is not JSON") from None
        if not isinstance(data, dict):
            raise BotApiError(resp.status, "answer is not a JSON object")
        if data.get("ok") is True:
            return data.get("result")
        parameters = data.get("parameters")
        after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise BotApiError(
            int(data.get("error_code") or resp.status),
            str(data.get("description") or ""),
            float(after) if isinstance(after, int | float) else None,
        )


def _explain(exc: BotApiError) -> dict[str, Any]:
    """The log fields of a refusal, with what to do about it."""
    out: dict[str, Any] = {"code": exc.code, "description": exc.description}
    if exc.code == 409:
        out["hint"] = (
            "a webhook was set again (`telegram set-webhook`) or another process polls with "
            "this bot token; backing off"
        )
    elif exc.code in (401, 404):
        out["hint"] = "check TELEGRAM_BOT_TOKEN"
    elif exc.retry_after is not None:
        out["retry_after"] = exc.retry_after
    return out
