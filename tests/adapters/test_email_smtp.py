"""The SMTP listener inside a running gateway (mail in over SMTP, replies out to a capturing SMTP
server), and loops: two gateways, or a gateway and an out-of-office responder, do not keep
mailing each other."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import SMTP, Envelope, Session

from config.settings import Settings
from core.models import Inbound, Outbound
from core.ports import NluResult, TurnOutcome
from core.session import Session as BotSession
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.services import Services
from gateway.smtp_listener import smtp_listener
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.fakes.smtp import SmtpSink


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def gateway(
    tmp_path: Path,
    *,
    address: str,
    smtp_port: int,
    listen: int | None = None,
    dialogue: Any = None,
    nlu: Any = None,
) -> AsyncIterator[tuple[Services, int]]:
    """A running gateway with its SMTP listener on `listen` (a free port by default), sending
    its replies to the SMTP server on `smtp_port`."""
    port = listen or free_port()
    settings = Settings(
        data_dir=tmp_path / address,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_starttls=False,
        email_from=f"Bot <{address}>",
        smtp_listen_port=port,
    )
    services = build_gateway(
        settings,
        "serve",
        nlu=nlu or KeywordNlu(),
        dialogue=dialogue or EchoDialogue(),
        with_worker=True,
    )
    assert "smtp listener" in services.part_names
    client = TestClient(TestServer(create_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        yield services, port
    finally:
        await client.close()


def user_mail(
    text: str, *, sender: str, to: str, subject: str = "Order", **headers: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="client.example")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


def sent_by(services: Services) -> int:
    value = services.metrics.registry.get_sample_value(
        "gateway_messages_out_total", {"channel": "email"}
    )
    return int(value or 0)


def counted(services: Services, metric: str, **labels: str) -> int:
    """An e-mail counter of `services`: `gateway_messages_in_total` (mail queued, counted before
    the listener's 250), `gateway_duplicates_total`, `gateway_turns_total`; summed over the
    labels not given."""
    wanted = {"channel": "email", **labels}
    return int(
        sum(
            sample.value
            for family in services.metrics.registry.collect()
            for sample in family.samples
            if sample.name == metric and wanted.items() <= sample.labels.items()
        )
    )


def plain(captured: Any) -> str:
    return str(captured.message.get_body(preferencelist=("plain",)).get_content())


async def settle(*checks: Any, timeout: float = 10.0) -> None:
    async def _wait() -> None:
        while not all(c() for c in checks):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(_wait(), timeout)


def test_the_listener_is_off_without_a_port(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, smtp_host="127.0.0.1", email_from="b@shop.example")
    services = build_gateway(
        settings, "serve", nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False
    )
    assert smtp_listener(services) is None
    assert "smtp listener" not in services.part_names
    settings = Settings(data_dir=tmp_path, smtp_listen_port=2525)  # no e-mail channel
    services = build_gateway(
        settings, "serve", nlu=KeywordNlu(), dialogue=EchoDialogue(), with_worker=False
    )
    assert smtp_listener(services) is None
    assert "smtp listener" not in services.part_names


async def test_mail_over_smtp_is_answered_in_its_thread(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    async with gateway(tmp_path, address="help@shop.example", smtp_port=smtp_sink.port) as (
        _s,
        port,
    ):
        mail = user_mail(
            "where is my order", sender="Ada <ada@client.example>", to="help@shop.example"
        )
        await aiosmtplib.send(
            mail, hostname="127.0.0.1", port=port, sender="ada+bounces@client.example"
        )
        [reply] = await smtp_sink.wait_for(1)
        assert reply.rcpt_tos == ["ada+bounces@client.example"]  # the envelope sender = Return-Path
        msg = reply.message
        assert msg["In-Reply-To"] == mail["Message-ID"] and msg["Auto-Submitted"] == "auto-replied"
        assert "#1 where is my order" in msg.get_body(preferencelist=("plain",)).get_content()
        answer = user_mail(
            "thanks\n\nOn Sun, Bot <help@shop.example> wrote:\n> #1 where is my order",
            sender="Ada <ada@client.example>",
            to="help@shop.example",
            subject="Re: Order",
            In_Reply_To=msg["Message-ID"],
            References=f"{mail['Message-ID']} {msg['Message-ID']}",
        )
        await aiosmtplib.send(answer, hostname="127.0.0.1", port=port, sender="ada@client.example")
        second = (await smtp_sink.wait_for(2))[1].message
        body = second.get_body(preferencelist=("plain",)).get_content()
        assert "#2 thanks" in body, "same conversation (turn 2), quoted text stripped"


async def test_the_same_mail_twice_is_answered_once(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with gateway(tmp_path, address="help@shop.example", smtp_port=smtp_sink.port) as (
        s,
        port,
    ):
        mail = user_mail("hello", sender="ada@client.example", to="help@shop.example")
        for _ in range(2):  # the MX retrying after a lost 250
            await aiosmtplib.send(
                mail, hostname="127.0.0.1", port=port, sender="ada@client.example"
            )
        # Each 250 came after the mail was queued or found queued already.
        assert counted(s, "gateway_messages_in_total") == 1
        assert counted(s, "gateway_duplicates_total") == 1
        await smtp_sink.wait_for(1)
        # A later mail in the same conversation, once the first answer is out: the turns of one
        # conversation run in order, so had the retry been answered too, that answer would be
        # out before this one's (and this one would be turn 3).
        later = user_mail("sentinel", sender="ada@client.example", to="help@shop.example")
        await aiosmtplib.send(later, hostname="127.0.0.1", port=port, sender="ada@client.example")
        await settle(lambda: any("sentinel" in plain(m) for m in smtp_sink.mail))
        assert [plain(m).splitlines()[0] for m in smtp_sink.mail] == ["#1 hello", "#2 sentinel"]


async def test_unreadable_mail_is_refused_and_rfc3834_mail_dropped(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    async with gateway(tmp_path, address="help@shop.example", smtp_port=smtp_sink.port) as (
        s,
        port,
    ):
        with pytest.raises(aiosmtplib.SMTPDataError) as err:
            await aiosmtplib.send(
                b"no headers at all",
                hostname="127.0.0.1",
                port=port,
                sender="x@client.example",
                recipients=["help@shop.example"],
            )
        assert err.value.code == 550
        bulk = user_mail(
            "newsletter", sender="news@client.example", to="help@shop.example", Precedence="bulk"
        )
        await aiosmtplib.send(bulk, hostname="127.0.0.1", port=port, sender="news@client.example")
        bounce = user_mail("undeliverable", sender="ada@client.example", to="help@shop.example")
        await aiosmtplib.send(bounce, hostname="127.0.0.1", port=port, sender="")  # MAIL FROM:<>
        # Dropped before the 250 (nothing queued, so nothing can be answered) ...
        assert counted(s, "gateway_messages_in_total") == 0
        # ... and a mail that may be answered, in the bounce's conversation, is the only one
        # answered, as that conversation's first turn.
        ok = user_mail("where is my order", sender="ada@client.example", to="help@shop.example")
        await aiosmtplib.send(ok, hostname="127.0.0.1", port=port, sender="ada@client.example")
        await settle(lambda: len(smtp_sink.mail) >= 1)
        assert [plain(m).splitlines()[0] for m in smtp_sink.mail] == ["#1 where is my order"]
        assert sent_by(s) == 1


async def test_two_gateways_do_not_mail_each_other_more_than_once(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    async with (  # each gateway's outgoing SMTP server is the other's listener
        gateway(tmp_path, address="help@a.example", listen=port_a, smtp_port=port_b) as (a, _),
        gateway(tmp_path, address="help@b.example", listen=port_b, smtp_port=port_a) as (b, _),
    ):
        # A person (or a misconfigured system) writes to A from B's address, with no
        # Auto-Submitted header: A answers once; B sees an auto-reply and stays silent.
        kick = user_mail("where is my order", sender="help@b.example", to="help@a.example")
        await aiosmtplib.send(kick, hostname="127.0.0.1", port=port_a, sender="help@b.example")
        await settle(lambda: sent_by(a) >= 1)
        # A's answer counts once B's listener said 250, which it says only after dropping or
        # queueing the mail: B queued nothing, so it has nothing to send, and A nothing more
        # to answer.
        queued = (counted(a, "gateway_messages_in_total"), counted(b, "gateway_messages_in_total"))
        assert queued == (1, 0)
        assert (sent_by(a), sent_by(b)) == (1, 0)


class OutOfOffice:
    """A careless out-of-office responder: answers every mail, at once, always with the same
    text, threaded, and with none of the headers that mark an automatic reply."""

    def __init__(self, reply_port: int) -> None:
        self.reply_port = reply_port
        self.received: list[EmailMessage] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        msg = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append(msg)
        task = asyncio.ensure_future(self._answer(msg))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return "250 OK"

    async def _answer(self, msg: EmailMessage) -> None:
        reply = user_mail(
            "I am out of the office until Monday and will read your message then.",
            sender="ada@client.example",
            to=str(msg["From"]),
            subject=f"Re: {msg['Subject']}",
            In_Reply_To=str(msg["Message-ID"]),
            References=str(msg["Message-ID"]),
        )
        await aiosmtplib.send(
            reply, hostname="127.0.0.1", port=self.reply_port, sender="ada@client.example"
        )


class FixedReply:
    """A bot that answers everything the same way (the worst case for a loop)."""

    async def step(self, session: BotSession, inbound: Inbound, nlu: NluResult) -> TurnOutcome:
        reply = Outbound(conversation=inbound.conversation, text="Sorry, I did not get that.")
        return TurnOutcome(replies=[reply], intent=nlu.intent, confidence=nlu.confidence)


@pytest.mark.parametrize(
    "dialogue", [FixedReply, EchoDialogue], ids=["fixed replies", "changing replies"]
)
async def test_an_out_of_office_responder_is_answered_once(tmp_path: Path, dialogue: Any) -> None:
    listen = free_port()
    responder = OutOfOffice(reply_port=listen)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(responder, hostname="ooo.test"), "127.0.0.1", 0)
    ooo_port = server.sockets[0].getsockname()[1]
    try:
        async with gateway(
            tmp_path,
            address="help@shop.example",
            smtp_port=ooo_port,
            listen=listen,
            dialogue=dialogue(),
        ) as (s, _):
            first = user_mail(
                "where is my order", sender="ada@client.example", to="help@shop.example"
            )
            await aiosmtplib.send(
                first, hostname="127.0.0.1", port=listen, sender="ada@client.example"
            )
            # Our answer to Ada; her out-of-office answers it; we answer that once; it answers
            # again; that repeat gets nothing, and the exchange is over. Waited for: the turn of
            # that repeat (the third mail in) has ended, its answer sent or held back by then.
            await settle(lambda: counted(s, "gateway_turns_total") >= 3)
            assert len(responder.received) == 2, "every mail we sent reached the responder"
            assert counted(s, "gateway_messages_in_total") == 3
    finally:
        server.close()
        await server.wait_closed()
        for task in list(responder.tasks):
            task.cancel()
