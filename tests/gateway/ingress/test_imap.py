"""E-mail from a mailbox, against a real IMAP server (dovecot on a loopback port): each unseen
message through the e-mail adapter's reading and RFC 3834 rules into the queue, marked seen
only once queued, one reply per Message-ID, a dropped connection made again, an unreadable
message left unseen and logged once."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from config.settings import Settings
from gateway.ingress.imap import ImapIngress
from tests.gateway.ingress.conftest import Served, serving, until
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.dovecot import PASSWORD, USER, Dovecot, running_dovecot
from tests.support.fakes.smtp import SmtpSink

SHOP = "help@shop.example"
HANDLED = '"Handled by bot"'
"""The folder as imaplib names it (quoted: it has spaces)."""


def mail(text: str, *, subject: str = "Order", **headers: str) -> EmailMessage:
    """A customer's mail as delivered to the mailbox (the MTA added Return-Path)."""
    msg = EmailMessage()
    msg["Return-Path"] = "<ada@client.example>"
    msg["From"] = "Ada <ada@client.example>"
    msg["To"] = SHOP
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="client.example")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


def imap_settings(tmp_path: Path, dovecot: Dovecot, sink: SmtpSink, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_starttls=False,
        email_from=SHOP,
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_username=USER,
        imap_password=PASSWORD,
        imap_tls=False,
        imap_poll_interval=1,
        **extra,
    )


def reader(gw: Served) -> ImapIngress:
    (loop,) = [x for x in gw.loops if isinstance(x, ImapIngress)]
    return loop


def plain(captured: Any) -> str:
    return str(captured.message.get_body(preferencelist=("plain",)).get_content())


async def deliver(dovecot: Dovecot, msg: EmailMessage) -> None:
    await asyncio.to_thread(dovecot.deliver, bytes(msg))


async def test_a_conversation_with_the_connection_cut_in_the_middle(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink
):
    async with serving(
        imap_settings(tmp_path, dovecot, smtp_sink), nlu=KeywordNlu(), dialogue=EchoDialogue()
    ) as gw:
        imap = reader(gw)
        await asyncio.wait_for(imap.connected.wait(), 15)
        assert imap.idle is True  # dovecot has IDLE: no polling
        first = mail("where is my order")
        await deliver(dovecot, first)
        [reply] = await smtp_sink.wait_for(1)
        assert reply.rcpt_tos == ["ada@client.example"]
        assert reply.message["In-Reply-To"] == first["Message-ID"]
        assert "#1 where is my order" in plain(reply)
        await until(lambda: "\\Seen" in dovecot.flags().get(first["Message-ID"], ""), what="seen")
        await asyncio.to_thread(dovecot.kick)
        await until(lambda: imap.connections >= 2 and imap.connected.is_set(), what="reconnect")
        second = mail(
            "A1B2C3",
            subject="Re: Order",
            In_Reply_To=reply.message["Message-ID"],
            References=f"{first['Message-ID']} {reply.message['Message-ID']}",
        )
        await deliver(dovecot, second)
        mails = await smtp_sink.wait_for(2, timeout=30)
        assert "#2 A1B2C3" in plain(mails[1])
        await until(lambda: "\\Seen" in dovecot.flags().get(second["Message-ID"], ""), what="seen")
        assert len(smtp_sink.mail) == 2
        assert gw.count("gateway_messages_in_total", "email") == 2


async def test_the_same_message_id_twice_is_answered_once(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink
):
    async with serving(
        imap_settings(tmp_path, dovecot, smtp_sink), nlu=KeywordNlu(), dialogue=EchoDialogue()
    ) as gw:
        await asyncio.wait_for(reader(gw).connected.wait(), 15)
        once = mail("hello")
        await deliver(dovecot, once)
        await deliver(dovecot, once)  # delivered twice (two recipients, a retrying MTA)
        await deliver(dovecot, mail("sentinel", subject="Other"))
        await smtp_sink.wait_for(2)
        await until(lambda: all("\\Seen" in f for f in dovecot.flags().values()), what="seen")
        assert gw.count("gateway_duplicates_total", "email") == 1
        assert len(smtp_sink.mail) == 2


async def test_auto_replies_are_seen_and_not_answered(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink
):
    async with serving(
        imap_settings(tmp_path, dovecot, smtp_sink), nlu=KeywordNlu(), dialogue=EchoDialogue()
    ) as gw:
        await asyncio.wait_for(reader(gw).connected.wait(), 15)
        auto = mail("I am out of office", Auto_Submitted="auto-replied")
        await deliver(dovecot, auto)
        await deliver(dovecot, mail("sentinel", subject="Other"))
        [reply] = await smtp_sink.wait_for(1)
        assert "sentinel" in plain(reply)
        await until(lambda: "\\Seen" in dovecot.flags().get(auto["Message-ID"], ""), what="seen")
        assert gw.count("gateway_messages_in_total", "email") == 1


async def test_an_unreadable_message_is_left_unseen_and_logged_once(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink
):
    broken = b"To: help@shop.example\r\nSubject: nobody sent this\r\n\r\nno sender\r\n"
    with capture_logs() as logs:
        async with serving(
            imap_settings(tmp_path, dovecot, smtp_sink), nlu=KeywordNlu(), dialogue=EchoDialogue()
        ) as gw:
            imap = reader(gw)
            await asyncio.wait_for(imap.connected.wait(), 15)
            await asyncio.to_thread(dovecot.deliver, broken)
            await deliver(dovecot, mail("sentinel one", subject="A"))
            await smtp_sink.wait_for(1)
            await deliver(dovecot, mail("sentinel two", subject="B"))
            await smtp_sink.wait_for(2)
            flags = dovecot.flags()
    unreadable = [e for e in logs if e["event"] == "imap.unreadable"]
    assert len(unreadable) == 1, unreadable
    assert sum("\\Seen" not in f for f in flags.values()) == 1


@pytest.mark.parametrize(
    "capability",
    ["", "imap_capability = IMAP4rev1 IDLE UIDPLUS"],
    ids=["MOVE", "copy and UID EXPUNGE (no MOVE)"],
)
async def test_with_imap_move_to_a_queued_message_is_moved_and_an_unreadable_one_stays(
    tmp_path: Path, smtp_sink: SmtpSink, capability: str
):
    """IMAP_MOVE_TO: each message goes to that folder (made at start) once queued, seen; one
    that cannot be read stays where it was, unseen. With MOVE, or without it."""
    broken = b"To: help@shop.example\r\nSubject: nobody sent this\r\n\r\nno sender\r\n"
    with running_dovecot(capability) as dovecot:
        await _moved_and_left(tmp_path, dovecot, smtp_sink, broken, moves=not capability)


async def _moved_and_left(
    tmp_path: Path, dovecot: Dovecot, smtp_sink: SmtpSink, broken: bytes, *, moves: bool
) -> None:
    settings = imap_settings(tmp_path, dovecot, smtp_sink, imap_move_to="Handled by bot")
    async with serving(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        await asyncio.wait_for(reader(gw).connected.wait(), 15)
        assert reader(gw).can_move is moves
        await asyncio.to_thread(dovecot.deliver, broken)
        first, second = mail("where is my order"), mail("and a refund", subject="Other")
        await deliver(dovecot, first)
        await deliver(dovecot, second)
        await smtp_sink.wait_for(2)
        moved = await until(
            lambda: len(got := dovecot.flags(HANDLED)) == 2 and got, what="both moved"
        )
        assert sorted(moved) == sorted([first["Message-ID"], second["Message-ID"]])
        assert all("\\Seen" in f for f in moved.values())
        left = dovecot.flags()
        assert len(left) == 1 and "\\Seen" not in next(iter(left.values())), left
        assert gw.count("gateway_messages_in_total", "email") == 2
