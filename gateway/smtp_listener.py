"""The gateway as a mail server: an aiosmtpd SMTP server in the gateway's own event loop that an
MX relays to, handing each message to the e-mail adapter and the queue (SMTP_LISTEN_PORT)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.email import EmailChannel
from core.errors import PayloadError, QueueUnavailable
from core.metrics import Metrics
from core.ports import Queue
from gateway.services import Services

log = structlog.get_logger(__name__)


class MailHandler:
    """aiosmtpd's DATA hook. The SMTP path is trusted by network position (only the MX relays
    here), so there is no signature; a message is accepted (250) only once it is queued."""

    def __init__(self, channel: EmailChannel, queue: Queue, metrics: Metrics | None = None):
        self._channel = channel
        self._queue = queue
        self._metrics = metrics

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        with structlog.contextvars.bound_contextvars(channel=self._channel.name, via="smtp"):
            try:
                # Off the loop: anyone may send mail here, and reading one (MIME, HTML) takes
                # milliseconds per kilobyte even bounded as it is.
                reply = await asyncio.to_thread(
                    self._channel.parse_mail, bytes(raw), envelope_from=envelope.mail_from or ""
                )
            except PayloadError as exc:
                self._count("rejected", reason="malformed")
                log.warning("smtp.rejected", reason=str(exc))
                return f"550 5.6.0 Message refused: {exc}"
            for event in reply.events:
                try:
                    fresh = await self._queue.put(event)
                except QueueUnavailable as exc:
                    log.error("smtp.enqueue_failed", error=str(exc), event_id=event.event_id)
                    return "451 4.3.0 Queue unavailable, try again later"
                if not fresh:
                    self._count("duplicates")
                elif self._metrics is not None:
                    self._metrics.counted_in(self._channel.name)
                log.info("smtp.queued" if fresh else "smtp.duplicate", event_id=event.event_id)
            if not reply.events and reply.note:
                log.info("smtp.ignored", reason=reply.note)
            return "250 2.0.0 OK"

    def _count(self, name: str, **labels: str) -> None:
        if self._metrics is None:
            return
        getattr(self._metrics, name).labels(channel=self._channel.name, **labels).inc()


@dataclass
class SmtpListener:
    """The SMTP server, one of the parts a `serve` process starts and stops (see
    `gateway.build`)."""

    handler: MailHandler
    host: str
    port: int
    data_size_limit: int
    hostname: str = "localhost"
    server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(
                self.handler,
                hostname=self.hostname,
                data_size_limit=self.data_size_limit,
                enable_SMTPUTF8=True,
            ),
            self.host,
            self.port,
        )
        log.info("smtp.listening", host=self.host, port=self.bound_port)

    @property
    def bound_port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def smtp_listener(services: Services) -> SmtpListener | None:
    """The listener for these services, or None when SMTP_LISTEN_PORT is unset or the e-mail
    channel is off. A message may carry one attachment of EMAIL_MAX_ATTACHMENT_BYTES (base64
    grows it by a third); bigger messages get SMTP's own 552."""
    s = services.settings
    channel = services.channels.get(EmailChannel.name)
    if s.smtp_listen_port is None or not isinstance(channel, EmailChannel):
        return None
    limit = max(s.max_body_bytes, s.email_max_attachment_bytes * 4 // 3 + 1_048_576)
    handler = MailHandler(channel, services.storage.queue, services.metrics)
    domain = (s.email_from or "").rpartition("@")[2].strip("> ") or "localhost"
    return SmtpListener(handler, s.smtp_listen_host, s.smtp_listen_port, limit, domain)
