"""Replies over SMTP to a real in-process server: RFC 3834 and threading headers, the Return-Path
as recipient, plain text and HTML with the options, the one-reply rule, auth, error mapping."""

from __future__ import annotations

import re

import pytest
from structlog.testing import capture_logs

from adapters.email import EmailChannel, MemoryReplyLedger, SmtpServer
from core.errors import ChannelSendError, ChannelUnreachable, SendRefused
from core.models import Button, Inbound, Outbound
from tests.support.fakes.smtp import SmtpSink, running_smtp_sink

BOT = "Shop Bot <help@shop.example>"


def channel(sink: SmtpSink, **kw: object) -> EmailChannel:
    smtp = SmtpServer(sink.host, sink.port, starttls=False, timeout=5)
    return EmailChannel(sender=BOT, smtp=kw.pop("smtp", smtp), **kw)  # type: ignore[arg-type]


def raw(
    text: str,
    mid: str,
    *,
    sender: str = "ada@client.example",
    return_path: str | None = None,
    extra: str = "",
) -> bytes:
    rp = return_path or sender
    return (
        f"Return-Path: <{rp}>\r\nFrom: Ada <{sender}>\r\nTo: {BOT}\r\n"
        "Subject: Where is my order?\r\n"
        f"Message-ID: <{mid}>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


async def inbound(ch: EmailChannel, text: str, mid: str, **kw: str) -> Inbound:
    [event] = ch.parse_mail(raw(text, mid, **kw)).events
    await ch.before_turn(event)
    return event


def reply_to(
    event: Inbound, text: str = "What's your order number?", buttons: tuple[Button, ...] = ()
) -> Outbound:
    return Outbound(conversation=event.conversation, text=text, buttons=buttons)


async def test_a_reply_is_threaded_marked_and_sent_to_the_return_path(smtp_sink: SmtpSink) -> None:
    ch = channel(smtp_sink)
    event = await inbound(
        ch,
        "where is my order",
        "q1@client.example",
        return_path="bounces+ada@client.example",
        extra="References: <root@client.example>\r\n",
    )
    buttons = (
        Button(label="Track an order", payload="/order_status"),
        Button(label="Talk to a person", payload="/human"),
    )
    sent = await ch.send(reply_to(event, "How can I help?", buttons))
    [mail] = smtp_sink.mail
    assert mail.rcpt_tos == ["bounces+ada@client.example"]
    assert mail.mail_from == "<>"  # the null envelope sender: a bounce of a reply never comes back
    msg = mail.message
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<q1@client.example>"
    assert msg["References"] == "<root@client.example> <q1@client.example>"
    assert msg["Subject"] == "Re: Where is my order?"
    assert msg["From"] == BOT and msg["To"] == "bounces+ada@client.example"
    assert re.fullmatch(
        r"<gw\.[0-9a-f]{16}\.[0-9a-f]{8}\.[0-9a-f]{16}@shop\.example>", msg["Message-ID"]
    )
    assert msg["Message-ID"] == f"<{sent.platform_id}>"
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "How can I help?\n\n1. Track an order\n2. Talk to a person" in plain
    assert "<ol><li>Track an order</li><li>Talk to a person</li></ol>" in html
    assert "Reply with the number" in plain


async def test_the_users_reply_to_our_mail_lands_in_the_same_conversation(
    smtp_sink: SmtpSink,
) -> None:
    ch = channel(smtp_sink)
    first = await inbound(ch, "where is my order", "q1@client.example")
    sent = await ch.send(reply_to(first))
    ours = f"<{sent.platform_id}>"
    extra = f"In-Reply-To: {ours}\r\nReferences: <q1@client.example> {ours}\r\n"
    body = "A1B2C3\r\n\r\nOn Sun, 22 Nov 2026, Shop Bot <help@shop.example> wrote:\r\n> Number?"
    second = await inbound(ch, body, "q2@client.example", extra=extra)
    assert second.conversation == first.conversation and second.text == "A1B2C3"
    await ch.send(reply_to(second, "Order A1B2C3 is shipped."))
    assert len(smtp_sink.mail) == 2
    assert smtp_sink.mail[1].message["In-Reply-To"] == "<q2@client.example>"


async def test_every_reply_of_one_turn_goes_out(smtp_sink: SmtpSink) -> None:
    ch = channel(smtp_sink)
    event = await inbound(ch, "A1B2C3", "q1@client.example")
    await ch.send(reply_to(event, "Order A1B2C3 is shipped."))
    await ch.send(reply_to(event, "Anything else?"))
    assert len(smtp_sink.mail) == 2


async def test_the_same_words_from_the_same_sender_are_answered_once_per_period(
    smtp_sink: SmtpSink,
) -> None:
    ch = channel(smtp_sink)
    for i in range(3):  # a responder repeating itself under new Message-IDs
        event = await inbound(ch, "I am out of the office.", f"ooo{i}@client.example")
        with capture_logs() as logs:
            sent = await ch.send(reply_to(event, "Sorry, I did not get that."))
    assert len(smtp_sink.mail) == 1
    assert sent.extra == {"suppressed": "rfc3834"}
    assert any(e["event"] == "email.autoreply_suppressed" for e in logs)
    other = await inbound(ch, "where is my order", "q9@client.example")
    await ch.send(reply_to(other))
    assert len(smtp_sink.mail) == 2, "something new is answered"


async def test_a_sender_is_answered_at_most_n_times_per_period(smtp_sink: SmtpSink) -> None:
    ch = channel(smtp_sink, max_replies_per_period=3)
    for i in range(6):
        event = await inbound(ch, f"message number {i}", f"n{i}@client.example")
        await ch.send(reply_to(event, f"answer {i}"))
    assert len(smtp_sink.mail) == 3
    someone_else = await inbound(ch, "hello", "x@other.example", sender="bob@other.example")
    await ch.send(reply_to(someone_else))
    assert len(smtp_sink.mail) == 4


async def test_the_period_can_be_turned_off(smtp_sink: SmtpSink) -> None:
    ch = channel(smtp_sink, autoreply_period=0)
    for i in range(2):
        event = await inbound(ch, "same words", f"s{i}@client.example")
        await ch.send(reply_to(event))
    assert len(smtp_sink.mail) == 2


async def test_the_ledger_is_shared_between_channel_instances(smtp_sink: SmtpSink) -> None:
    """Two worker processes share the ledger (Redis at scale; one object here)."""
    ledger = MemoryReplyLedger()
    a, b = channel(smtp_sink, ledger=ledger), channel(smtp_sink, ledger=ledger)
    await a.send(reply_to(await inbound(a, "out of office", "o1@client.example")))
    await b.send(reply_to(await inbound(b, "out of office", "o2@client.example")))
    assert len(smtp_sink.mail) == 1


async def test_without_a_turn_record_the_reply_goes_to_the_conversations_address(
    smtp_sink: SmtpSink,
) -> None:
    ch = channel(smtp_sink)
    [event] = ch.parse_mail(
        raw("hi", "h1@client.example")
    ).events  # no before_turn: a replay elsewhere
    await ch.send(reply_to(event, "Hello again"))
    [mail] = smtp_sink.mail
    assert (
        mail.rcpt_tos == ["ada@client.example"] and mail.message["Auto-Submitted"] == "auto-replied"
    )


async def test_smtp_auth_is_used_when_configured() -> None:
    async with running_smtp_sink() as sink:
        sink.users["bot"] = "s3cret"
        smtp = SmtpServer(
            sink.host, sink.port, username="bot", password="s3cret", starttls=False, timeout=5
        )
        ch = channel(sink, smtp=smtp)
        await ch.send(reply_to(await inbound(ch, "hi", "a1@client.example")))
        assert sink.mail[0].login == "bot"
        wrong = channel(
            sink,
            smtp=SmtpServer(
                sink.host, sink.port, username="bot", password="no", starttls=False, timeout=5
            ),
        )
        with pytest.raises(ChannelSendError) as err:
            await wrong.send(reply_to(await inbound(wrong, "hi", "a2@client.example")))
        assert isinstance(err.value, SendRefused)


async def test_starttls_required_but_not_offered_fails_clearly(smtp_sink: SmtpSink) -> None:
    ch = channel(
        smtp_sink, smtp=SmtpServer(smtp_sink.host, smtp_sink.port, starttls=True, timeout=5)
    )
    with pytest.raises(ChannelSendError):
        await ch.send(reply_to(await inbound(ch, "hi", "t1@client.example")))
    assert smtp_sink.mail == []


@pytest.mark.parametrize(
    ("answer", "kind"),
    [("451 4.3.0 Try again later", ChannelUnreachable), ("554 5.7.1 Rejected", SendRefused)],
)
async def test_smtp_errors_say_whether_to_retry(
    smtp_sink: SmtpSink, answer: str, kind: type[ChannelSendError]
) -> None:
    smtp_sink.reject_next.append(answer)
    ch = channel(smtp_sink)
    with pytest.raises(ChannelSendError) as err:
        await ch.send(reply_to(await inbound(ch, "hi", "e1@client.example")))
    assert type(err.value) is kind


async def test_an_unreachable_server_is_retryable() -> None:
    ch = EmailChannel(sender=BOT, smtp=SmtpServer("127.0.0.1", 9, starttls=False, timeout=2))
    with pytest.raises(ChannelSendError) as err:
        await ch.send(reply_to(await inbound(ch, "hi", "u1@client.example")))
    assert isinstance(err.value, ChannelUnreachable)


async def test_a_short_answer_to_another_question_is_answered_again(smtp_sink: SmtpSink) -> None:
    ch = channel(smtp_sink)
    first = await inbound(ch, "help", "c0@client.example")
    asked = await ch.send(reply_to(first, "Which one? 1. Track 2. Person"))
    one = await inbound(
        ch, "1", "c1@client.example", extra=f"In-Reply-To: <{asked.platform_id}>\r\n"
    )
    asked_again = await ch.send(reply_to(one, "Which order? 1. A1B2C3 2. Z9Y8X7"))
    again = await inbound(
        ch, "1", "c2@client.example", extra=f"In-Reply-To: <{asked_again.platform_id}>\r\n"
    )
    await ch.send(reply_to(again, "Order A1B2C3 is shipped."))
    assert len(smtp_sink.mail) == 3
