"""Where a conversation handed to a person is announced: a log line always, and an HTTP webhook
(with retries) when one is configured. A record whose idempotency key was already announced by
this process (the same turn run again after its session could not be saved) is not re-sent."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict

import structlog

from core.errors import ActionError
from core.ports import HandoffRecord
from integrations.http import HttpClient
from integrations.resilience import with_retries

log = structlog.get_logger(__name__)


class LogHandoff:
    REMEMBER = 10_000
    """How many announced keys are kept (oldest forgotten first)."""

    def __init__(self) -> None:
        self._sent: OrderedDict[str, None] = OrderedDict()

    def _first(self, record: HandoffRecord) -> bool:
        """True the first time a key is seen (a record without a key always counts as new)."""
        if not record.key:
            return True
        if record.key in self._sent:
            log.info("handoff.duplicate", conversation=record.conversation)
            return False
        self._sent[record.key] = None
        while len(self._sent) > self.REMEMBER:
            self._sent.popitem(last=False)
        return True

    async def notify(self, record: HandoffRecord) -> None:
        if self._first(record):
            self._log(record)

    def _log(self, record: HandoffRecord) -> None:
        log.info(
            "handoff.requested",
            conversation=record.conversation,
            queue=record.queue,
            intent=record.intent,
            confidence=record.confidence,
            slots=sorted(record.slots),
            turns=len(record.transcript),
        )


class WebhookHandoff(LogHandoff):
    """POSTs the record as JSON: {conversation, channel, queue, intent, confidence, slots,
    transcript: [{user, intent, bot}], at}. Sent in the background so a slow helpdesk never
    delays the user's answer; `close` waits for what is still on its way."""

    def __init__(self, url: str, client: HttpClient | None = None, timeout: float = 5.0):
        super().__init__()
        self._url = url
        self._client = client or HttpClient()
        self._timeout = timeout
        self._pending: set[asyncio.Task[None]] = set()

    async def notify(self, record: HandoffRecord) -> None:
        if not self._first(record):
            return
        self._log(record)
        task = asyncio.create_task(self._post(record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self._timeout * 3)

    async def _post(self, record: HandoffRecord) -> None:
        body = dataclasses.asdict(record)
        headers = {"Idempotency-Key": record.key} if record.key else {}
        try:
            await with_retries(
                lambda: self._client.request("POST", self._url, headers=headers, json=body),
                retries=2,
                timeout=self._timeout,
            )
        except ActionError as exc:
            log.error("handoff.webhook_failed", error=str(exc))

    async def close(self) -> None:
        await self.flush()
        await self._client.close()
