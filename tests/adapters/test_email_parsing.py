"""Reading mail: charsets, HTML-only, attachments over the limit, quoted text and signatures,
threads, and every kind of mail RFC 3834 says not to answer."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from adapters.email import EmailChannel, SmtpServer
from adapters.email.compose import normalise_subject, thread_of
from adapters.email.htmltext import html_to_text, tidy
from adapters.email.mime import (
    MAX_BOUNDARIES,
    MAX_HEADER_CHARS,
    MAX_TEXT_CHARS,
    read,
    with_return_path,
)
from adapters.email.quotes import new_text
from core.errors import PayloadError

SAMPLES = Path(__file__).parents[1] / "fixtures" / "email"


def channel(**kw: object) -> EmailChannel:
    return EmailChannel(sender="Shop Bot <help@shop.example>", smtp=SmtpServer("127.0.0.1"), **kw)  # type: ignore[arg-type]


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


def mail(text: str = "hello", **headers: str) -> bytes:
    msg = EmailMessage()
    defaults = {
        "Return-Path": "<ada@client.example>",
        "From": "Ada <ada@client.example>",
        "To": "help@shop.example",
        "Subject": "Question",
        "Message-ID": "<m1@client.example>",
    }
    given = {k.replace("_", "-"): v for k, v in headers.items()}
    for name, value in {**defaults, **given}.items():
        if value:
            msg[name] = value
    msg.set_content(text)
    return msg.as_bytes()


def test_plain_text_is_preferred_over_html() -> None:
    [event] = channel().parse_mail(sample("gmail_alternative")).events
    assert event.text.startswith("Hi, where is my order?") and "<div" not in event.text


def test_html_only_mail_is_converted_and_its_quote_cut() -> None:
    [event] = channel().parse_mail(sample("outlook_html_only_reply")).events
    assert event.text == "A1B2C3"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("iso8859_1", "où en est ma commande"),
        ("shift_jis", "注文番号は①A1B2C3です"),
        ("iso_2022_jp", "注文の配送状況を確認したいです"),
    ],
)
def test_charsets_as_clients_send_them(name: str, words: str) -> None:
    [event] = channel().parse_mail(sample(name)).events
    assert words in event.text and "\ufffd" not in event.text


def test_encoded_headers_are_decoded() -> None:
    [event] = channel().parse_mail(sample("shift_jis")).events
    assert event.sender.name == "山田太郎" and event.meta["subject"] == "注文について"
    [event] = channel().parse_mail(sample("iso8859_1")).events
    assert (
        event.sender.name == "François Lefèvre" and event.meta["subject"] == "Où est ma commande ?"
    )


def test_attachments_kept_and_oversize_ones_dropped_with_a_note() -> None:
    [event] = (
        channel(max_attachment_bytes=100_000).parse_mail(sample("thunderbird_attachments")).events
    )
    [pdf] = event.attachments
    assert pdf.name == "invoice.pdf" and pdf.content is not None and pdf.content.startswith(b"%PDF")
    assert 'attachment "parcel.jpg" (150 KB) dropped' in event.text
    assert "Musterstrasse" not in event.text  # the signature is cut
    [event] = channel().parse_mail(sample("thunderbird_attachments")).events
    assert len(event.attachments) == 2 and "dropped" not in event.text


def test_a_numbered_choice_reaches_the_core_as_the_number() -> None:
    [event] = channel().parse_mail(sample("gmail_reply_choice")).events
    assert event.text == "2"


@pytest.mark.parametrize(
    ("body", "new"),
    [
        ("2\n\nOn Sun, 22 Nov 2026 at 10:00, Bot <b@x> wrote:\n> 1. Track\n> 2. Person", "2"),
        ("A1B2C3\n\n-- \nJane\n+1 555 0100", "A1B2C3"),
        ("Yes\n\n-----Original Message-----\nFrom: Bot\nSent: today", "Yes"),
        ("Ja\n\nAm 22.11.2026 um 10:00 schrieb Bot <b@x>:\n> Frage", "Ja"),
        ("Oui\n\nLe dim. 22 nov. 2026 à 10:00, Bot <b@x> a écrit :\n> Question", "Oui"),
        ("1\n\n2026年11月22日(日) 10:00 Bot <b@x>:\n> 質問", "1"),
        ("Sure\n\nSent from my iPhone", "Sure"),
        ("No thanks\n\nFrom: Shop Bot <help@shop.example>\nSent: Sunday\nTo: Ada", "No thanks"),
        ("> quoted first\nmy answer\n> quoted after", "my answer"),
    ],
)
def test_new_text_only(body: str, new: str) -> None:
    assert new_text(body) == new


def test_an_empty_body_falls_back_to_the_subject() -> None:
    [event] = channel().parse_mail(mail("", Subject="Re: Where is my order?")).events
    assert event.text == "Where is my order?"


def test_message_id_is_the_event_id_and_a_missing_one_is_stable() -> None:
    [event] = channel().parse_mail(mail(Message_ID="<abc@client.example>")).events
    assert event.event_id == "abc@client.example"
    raw = mail(Message_ID="")
    [a], [b] = channel().parse_mail(raw).events, channel().parse_mail(raw).events
    assert a.event_id == b.event_id and a.event_id.startswith("sha256.")


def test_a_thread_is_one_conversation() -> None:
    first = read(mail(Subject="Order"), max_attachment_bytes=1)
    again = read(mail(Subject="RE: AW: order ", Message_ID="<m2@c>"), max_attachment_bytes=1)
    assert thread_of(first) == thread_of(again)
    ours = "gw.0123456789abcdef.89abcdef.0011223344556677@shop.example"
    only_in_reply_to = read(mail(Subject="x", In_Reply_To=f"<{ours}>"), max_attachment_bytes=1)
    assert thread_of(only_in_reply_to) == "0123456789abcdef"
    rooted = read(mail(References="<root@c> <other@c>"), max_attachment_bytes=1)
    assert thread_of(rooted) == thread_of(read(mail(References="<root@c>"), max_attachment_bytes=1))
    assert thread_of(rooted) != thread_of(first)
    assert normalise_subject("Re: Fwd:  Where IS my order") == "where is my order"


def test_the_conversation_is_the_sender_and_the_thread() -> None:
    [event] = channel().parse_mail(mail(From="Ada <ADA@Client.Example>")).events
    assert event.conversation.chat_id == "ada@client.example"
    assert event.conversation.thread_id and event.meta["reply_to"] == "ada@client.example"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (sample("auto_reply_vacation"), "Auto-Submitted: auto-replied"),
        (sample("auto_reply_exchange"), "Auto-Submitted: auto-generated"),
        (sample("bounce_dsn"), "Auto-Submitted"),
        (sample("list_mailman"), "mailing list"),
        (sample("noreply_notification"), "no-reply"),
        (mail(Auto_Submitted="auto-generated"), "Auto-Submitted"),
        (mail(Return_Path=""), "no Return-Path"),
        (mail(Return_Path="<>"), "null Return-Path"),
        (mail(Return_Path="<MAILER-DAEMON@mx.example>"), "mailer-daemon"),
        (
            mail(From="owner-shoppers@lists.example", Return_Path="<owner-shoppers@lists.example>"),
            "owner-*",
        ),
        (
            mail(
                From="shoppers-request@lists.example",
                Return_Path="<shoppers-request@lists.example>",
            ),
            "*-request",
        ),
        (mail(From="noreply@shop.example", Return_Path="<noreply@shop.example>"), "no-reply"),
        (mail(List_Id="<shoppers.lists.example>"), "mailing list"),
        (mail(Precedence="bulk"), "Precedence: bulk"),
        (mail(Precedence="junk"), "Precedence: junk"),
        (mail(Precedence="list"), "Precedence: list"),
        (mail(From="help@shop.example", Return_Path="<help@shop.example>"), "own address"),
    ],
)
def test_rfc3834_mail_is_never_answered(raw: bytes, reason: str) -> None:
    reply = channel().parse_mail(raw)
    assert reply.events == () and reply.status == 200
    assert reply.note is not None and reason.lower() in reply.note.lower()


def test_a_dsn_without_auto_submitted_is_still_a_bounce() -> None:
    raw = sample("bounce_dsn").replace(b"Auto-Submitted: auto-replied\r\n", b"")
    raw = raw.replace(b"Return-Path: <>", b"Return-Path: <postmaster-bounces@mx.shop.example>")
    reply = channel().parse_mail(raw)
    assert reply.events == () and reply.note and "DSN" in reply.note


def test_auto_submitted_no_is_answered() -> None:
    assert len(channel().parse_mail(mail(Auto_Submitted="no")).events) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n",
        sample("not_mime"),
        b"Subject: no sender\r\n\r\nbody",
        b"From: nobody\r\n\r\nx",
    ],
    ids=["empty", "blank", "garbage", "no From", "From without address"],
)
def test_unreadable_mail_is_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(PayloadError, match=r"not parseable|empty"):
        channel().parse_mail(raw)


def test_the_envelope_sender_becomes_the_return_path() -> None:
    raw = with_return_path(mail(Return_Path="<forged@evil.example>"), "real@client.example")
    assert raw.count(b"Return-Path") == 1
    [event] = channel().parse_mail(mail(Return_Path=""), envelope_from="bob@client.example").events
    assert event.meta["reply_to"] == "bob@client.example"
    reply = channel().parse_mail(mail(), envelope_from="")
    assert reply.events == () and reply.note and "null Return-Path" in reply.note


@pytest.mark.parametrize("bad", [b"Message-ID: <@>", b"References: <@>", b"In-Reply-To: <@>"])
def test_a_header_the_library_cannot_parse_does_not_crash_the_parse(bad: bytes) -> None:
    raw = (
        b"Return-Path: <ada@client.example>\r\nFrom: ada@client.example\r\n"
        b"To: help@shop.example\r\nSubject: hi\r\n" + bad + b"\r\n\r\nwhere is my order\r\n"
    )
    [event] = channel().parse_mail(raw).events
    assert event.text == "where is my order"
    assert ("Subject", "hi") in event.raw["headers"]


# -- bounded on hostile mail (tests/test_linear_text.py times every shape) -----------------------


def test_a_long_body_is_cut_before_it_is_read_and_the_text_says_so() -> None:
    [event] = channel().parse_mail(mail("where is my order " * 10_000)).events
    body, note = event.text.rsplit("\n\n", 1)
    assert body.startswith("where is my order") and len(body) <= MAX_TEXT_CHARS
    assert note == f"[message cut: only its first {MAX_TEXT_CHARS:,} characters were read]"


def test_html_a_parser_would_choke_on_reads_as_a_browser_shows_it() -> None:
    assert html_to_text("<p>a < b &amp; c & d &lt; e</p>").strip() == "a < b & c & d < e"
    assert html_to_text("<p>kept</p><!-- never closed <p>hidden</p>").strip() == "kept"
    assert html_to_text("<a " * 3).strip() == "<a <a <a"
    deep = html_to_text("<ul><li>" * 50 + "bottom")
    assert deep.strip().endswith("bottom") and len(deep) < 50 * 20
    outlook = sample("outlook_html_only_reply").decode()
    assert tidy(outlook[outlook.index("<html") :]).count("<") > 10  # real HTML goes through


def test_a_mail_of_many_mime_parts_is_read_up_to_a_bound() -> None:
    parts = "".join(f"--b\r\n\r\npart {i}\r\n" for i in range(1_000))
    raw = mail().replace(
        b'Content-Type: text/plain; charset="utf-8"', b"Content-Type: multipart/mixed; boundary=b"
    )
    raw = raw[: raw.index(b"\n\n") + 2] + parts.encode()
    [event] = channel().parse_mail(raw).events
    assert event.text.startswith("part 0")
    assert event.text.endswith(f"[message cut after {MAX_BOUNDARIES} MIME boundaries]")


def test_header_values_are_read_to_one_line_and_prefixes_in_one_pass() -> None:
    parsed = read(mail(Subject="Re: " * 2_000 + "Order"), max_attachment_bytes=1024)
    assert len(parsed.subject) <= MAX_HEADER_CHARS
    assert normalise_subject("Re: AW: " * 20_000 + "Order") == "order"
    assert normalise_subject("RE:Re[2]:  Fwd : Order re: x") == "order re: x"
