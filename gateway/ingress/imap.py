"""E-mail from a mailbox (IMAP_HOST...): no public URL and no MX needed. Each unseen message of
IMAP_FOLDER goes through the e-mail adapter's own reading and RFC 3834 rules (as over SMTP and
the webhook) into the queue, deduplicated on its Message-ID, and is marked seen (and moved to
IMAP_MOVE_TO when set) only once it is queued or deliberately not answered. New mail is waited
for with IDLE where the server has it, by looking again every IMAP_POLL_INTERVAL seconds
otherwise. A message that cannot be read is left unseen and logged once, not tried again and
again; a dropped connection is made again with back-off."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Coroutine
from typing import Any

import structlog
from aioimaplib import IMAP4, IMAP4_SSL, AioImapException
from aioimaplib.aioimaplib import quoted

from adapters.email import EmailChannel
from core.channel import PayloadError
from core.errors import QueueUnavailable
from core.tasks import BackgroundTask
from gateway.ingress.backoff import Backoff
from gateway.ingress.intake import Intake

log = structlog.get_logger(__name__)

IDLE_REFRESH = 25 * 60.0
"""Servers may end an IDLE after 30 minutes (RFC 2177): it is renewed before."""


class MailboxError(Exception):
    """The server refused a command (login, select...)."""


class ImapIngress(BackgroundTask):
    """`async with ImapIngress(...)`: reading the mailbox from enter to exit."""

    task_name = "imap-ingress"

    def __init__(
        self,
        *,
        channel: EmailChannel,
        intake: Intake,
        host: str,
        port: int,
        username: str,
        password: str,
        folder: str = "INBOX",
        move_to: str | None = None,
        tls: bool = True,
        poll_interval: float = 60.0,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self._channel = channel
        self._intake = intake
        self._host, self._port, self._tls = host, port, tls
        self._username, self._password = username, password
        self._folder = folder
        self._move_to = move_to
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._lost = asyncio.Event()
        self._unreadable: set[str] = set()
        """UIDs of messages that could not be read: logged once, left unseen, not retried."""
        self.connected = asyncio.Event()
        self.connections = 0
        self.idle: bool | None = None
        """Whether the server has IDLE (known once connected)."""
        self.can_move: bool | None = None
        """Whether it has MOVE (RFC 6851), likewise."""

    async def _close(self) -> None:
        log.info("imap.stopped")

    async def _run(self) -> None:
        backoff = Backoff(self._stopping)
        failing = False
        while not self._stopping.is_set():
            imap: IMAP4 | None = None
            try:
                imap = await self._connect()
                backoff.reset()
                if failing:
                    log.info("imap.reconnected", host=self._host)
                failing = False
                await self._until_lost(self._serve(imap))
            except (AioImapException, MailboxError, OSError, TimeoutError) as exc:
                if not failing:
                    log.warning(
                        "imap.connection_lost" if self.connections else "imap.unreachable",
                        host=self._host,
                        error=str(exc) or type(exc).__name__,
                    )
                failing = True
            finally:
                self.connected.clear()
                if imap is not None:
                    await _close(imap)
            if not await backoff.wait():
                return

    async def _connect(self) -> IMAP4:
        self._lost = asyncio.Event()
        lost = self._lost

        def on_lost(_exc: Exception | None) -> None:
            lost.set()

        imap: IMAP4
        if self._tls:
            imap = IMAP4_SSL(
                self._host,
                self._port,
                timeout=self._timeout,
                ssl_context=ssl.create_default_context(),
            )
            imap.protocol.conn_lost_cb = on_lost
        else:
            imap = IMAP4(self._host, self._port, timeout=self._timeout, conn_lost_cb=on_lost)
        await imap.wait_hello_from_server()
        _ok(await imap.login(self._username, self._password), "login")
        _ok(await imap.select(quoted(self._folder)), f"select {self._folder}")
        if self._move_to:
            await _ensure_folder(imap, self._move_to)
        self.idle = imap.has_capability("IDLE")
        self.can_move = imap.has_capability("MOVE")
        self.connections += 1
        self.connected.set()
        log.info("imap.connected", host=self._host, folder=self._folder, idle=self.idle)
        return imap

    async def _until_lost(self, work: Coroutine[Any, Any, None]) -> None:
        """`work`, cut short when the connection goes (aioimaplib's commands may otherwise wait
        for an answer that cannot come until their own timeout, or for ever in IDLE)."""
        task = asyncio.ensure_future(work)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if not task.cancelled() and task.exception() is None:
            return
        if task.cancelled() or self._lost.is_set():
            raise ConnectionError("connection closed by the server")
        task.result()

    async def _serve(self, imap: IMAP4) -> None:
        while not self._stopping.is_set():
            await self._sweep(imap)
            if self.idle:
                idle = await imap.idle_start(timeout=min(IDLE_REFRESH, self._poll_interval * 10))
                await self._wait(imap.wait_server_push(timeout=IDLE_REFRESH + 60))
                self._check()
                imap.idle_done()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(idle, self._timeout)
            else:
                await self._wait(asyncio.sleep(self._poll_interval))
            self._check()

    def _check(self) -> None:
        if self._lost.is_set():
            raise ConnectionError("connection closed by the server")

    async def _wait(self, coro: object) -> None:
        """Until `coro` finishes, the connection is lost, or the ingress stops."""
        waiters = {
            asyncio.ensure_future(coro),  # type: ignore[arg-type]
            asyncio.ensure_future(self._lost.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            for w in waiters:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w

    async def _sweep(self, imap: IMAP4) -> None:
        """Every unseen message, in order: queued, then marked seen."""
        found = await imap.uid_search("UNSEEN")
        _ok(found, "search")
        uids = [u.decode() for line in found.lines[:1] for u in bytes(line).split() if u.isdigit()]
        for uid in uids:
            if uid in self._unreadable or self._stopping.is_set():
                continue
            fetched = await imap.uid("fetch", uid, "(BODY.PEEK[])")
            _ok(fetched, "fetch")
            raw = next((bytes(x) for x in fetched.lines if isinstance(x, bytearray)), None)
            if raw is None:
                continue  # expunged meanwhile
            if await self._take(uid, raw):
                await self._done(imap, uid)

    async def _done(self, imap: IMAP4, uid: str) -> None:
        """Out of the way of the next sweep: seen, and moved when IMAP_MOVE_TO says so (seen
        first, so that it reads as handled in the other folder too)."""
        _ok(await imap.uid("store", uid, "+FLAGS.SILENT", r"(\Seen)"), "store")
        if not self._move_to:
            return
        folder = quoted(self._move_to)
        if self.can_move:  # RFC 6851: one atomic step
            _ok(await imap.uid("move", uid, folder), f"move to {self._move_to}")
            return
        # Without MOVE: copy, then delete the original. UID EXPUNGE (UIDPLUS) removes only
        # this one; a plain EXPUNGE would also remove what others marked deleted.
        _ok(await imap.uid("copy", uid, folder), f"copy to {self._move_to}")
        _ok(await imap.uid("store", uid, "+FLAGS.SILENT", r"(\Deleted)"), "store")
        if imap.has_capability("UIDPLUS"):
            _ok(await imap.uid("expunge", uid), "expunge")
        else:
            _ok(await imap.expunge(), "expunge")

    async def _take(self, uid: str, raw: bytes) -> bool:
        parse = self._channel.parse_mail
        try:
            await self._intake.take_with(lambda: parse(raw), len(raw))
        except PayloadError as exc:
            self._unreadable.add(uid)
            self._intake.metrics.rejected.labels(channel="email", reason="malformed").inc()
            log.warning("imap.unreadable", uid=uid, reason=str(exc), left="unseen")
            return False
        except QueueUnavailable as exc:
            # Left unseen: the next sweep (or the next connection) takes it again.
            raise MailboxError(f"queue unavailable: {exc}") from None
        return True


async def _ensure_folder(imap: IMAP4, folder: str) -> None:
    """`folder` made when missing. CREATE of one that exists is refused, which is fine; the
    STATUS after it tells whether the folder is there."""
    await imap.create(quoted(folder))
    _ok(await imap.status(quoted(folder), "(MESSAGES)"), f"folder {folder} (IMAP_MOVE_TO)")


def _ok(resp: object, what: str) -> None:
    result = getattr(resp, "result", None)
    if result != "OK":
        lines = getattr(resp, "lines", [])
        said = bytes(lines[-1]).decode("utf-8", "replace") if lines else ""
        raise MailboxError(f"{what} refused: {result} {said}".strip())


async def _close(imap: IMAP4) -> None:
    """LOGOUT when the server still listens; the socket closed in any case (aioimaplib leaves
    it open when the logout cannot be sent)."""
    transport = imap.protocol.transport
    if transport is not None and not transport.is_closing():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(imap.logout(), 2)
    if transport is not None:
        transport.close()
