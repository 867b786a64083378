"""An in-process SMTP server (aiosmtpd) on a free loopback port that keeps the mail it is sent:
the e-mail channel's platform, with the fixture `smtp_sink`."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.fakes import Sent


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None = None

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SmtpSink:
    """What the server was sent; `arrived` is set on each mail, for tests that wait."""

    host: str
    port: int
    mail: list[Captured] = field(default_factory=list)
    reject_next: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    users: dict[str, str] = field(default_factory=dict)

    def sent(self) -> list[Sent]:
        """For the contract suite: each mail as (recipient, plain-text part, thread root)."""
        out = []
        for c in self.mail:
            msg = c.message
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            refs = str(msg.get("references", "")).split()
            out.append(
                Sent(chat_id=c.rcpt_tos[0], text=text.strip(), thread_id=refs[0] if refs else None)
            )
        return out

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Captured]:
        async def _wait() -> None:
            while len(self.mail) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(_wait(), timeout)
        return self.mail


class _Capture:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.reject_next:
            return self.sink.reject_next.pop(0)
        login = (
            session.auth_data.login.decode()
            if session.authenticated and isinstance(session.auth_data, LoginPassword)
            else None
        )
        self.sink.mail.append(
            Captured(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                login=login,
            )
        )
        self.sink.arrived.set()
        return "250 OK"


async def start_smtp_sink(**smtp_kwargs: Any) -> tuple[SmtpSink, asyncio.AbstractServer]:
    """An SMTP server in this event loop (not aiosmtpd's Controller thread), so tests and the
    gateway share one loop."""
    loop = asyncio.get_running_loop()
    sink = SmtpSink("127.0.0.1", 0)
    handler = _Capture(sink)

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and sink.users.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data)

    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="sink.test",
            authenticator=authenticate,
            auth_require_tls=False,
            **smtp_kwargs,
        ),
        "127.0.0.1",
        0,
    )
    sink.port = server.sockets[0].getsockname()[1]
    return sink, server


@asynccontextmanager
async def running_smtp_sink(**smtp_kwargs: Any) -> AsyncIterator[SmtpSink]:
    sink, server = await start_smtp_sink(**smtp_kwargs)
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    async with running_smtp_sink() as sink:
        yield sink
