"""End to end by mail over SMTP with the product's real brain: a mail asking about an order,
the bot's question, the user's reply to that mail (quoted, threaded) with the number, and the
answer naming the order and its status, all through the SMTP listener and a capturing server.
(The webhook path of e-mail and WhatsApp runs in `test_e2e.py` over the contract cases.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosmtplib

from tests.adapters.test_email_smtp import gateway, user_mail
from tests.support.fakes.smtp import Captured, SmtpSink


def plain(mail: Captured) -> str:
    body = mail.message.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


async def reply_matching(sink: SmtpSink, after: int, words: tuple[str, ...]) -> Captured:
    for count in range(after + 1, after + 6):
        mails = await sink.wait_for(count, timeout=30)
        for mail in mails[after:]:
            if all(w.lower() in plain(mail).lower() for w in words):
                return mail
    raise AssertionError(f"no reply with {words}: {[plain(m) for m in sink.mail[after:]]}")


async def test_order_status_by_mail(real_brain: Any, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with gateway(
        tmp_path,
        address="help@shop.example",
        smtp_port=smtp_sink.port,
        dialogue=real_brain.dialogue,
        nlu=real_brain.nlu,
    ) as (_, port):
        ask = user_mail(
            "where is my order", sender="Ada <ada@client.example>", to="help@shop.example"
        )
        await aiosmtplib.send(ask, hostname="127.0.0.1", port=port, sender="ada@client.example")
        question = await reply_matching(smtp_sink, 0, ("order number",))
        ours = question.message["Message-ID"]
        quoted = "\n".join(f"> {line}" for line in plain(question).splitlines())
        answer = user_mail(
            f"A1B2C3\n\nOn Sun, 22 Nov 2026, Shop Bot <help@shop.example> wrote:\n{quoted}",
            sender="Ada <ada@client.example>",
            to="help@shop.example",
            subject=str(question.message["Subject"]),
            In_Reply_To=ours,
            References=f"{ask['Message-ID']} {ours}",
        )
        seen = len(smtp_sink.mail)
        await aiosmtplib.send(answer, hostname="127.0.0.1", port=port, sender="ada@client.example")
        done = await reply_matching(smtp_sink, seen, ("A1B2C3", "shipped"))
        assert done.rcpt_tos == ["ada@client.example"]
        assert done.message["In-Reply-To"] == answer["Message-ID"]
        assert done.message["Auto-Submitted"] == "auto-replied"
