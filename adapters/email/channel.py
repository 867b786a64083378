"""The e-mail channel: mail in over SMTP or a signed webhook, RFC 3834 auto-replies out over
SMTP (aiosmtplib), threaded, with plain text and HTML and the options numbered."""

from __future__ import annotations

import ssl
from collections import OrderedDict
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from functools import partial
from typing import ClassVar

import aiosmtplib
import structlog

from adapters.email import compose, mailgun, mime
from adapters.email.quotes import new_text
from adapters.email.rfc3834 import MemoryReplyLedger, ReplyLedger, refusal
from core.channel import BaseChannel, SentMessage, Step, WebhookReply, WebhookRequest, send_steps
from core.errors import ChannelUnreachable, PayloadError, SendRefused, VerificationError
from core.models import Button, Capabilities, ConversationRef, Inbound, Outbound, Sender
from core.render import split_text

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where replies are sent. `starttls`: require STARTTLS (port 465 means implicit TLS)."""

    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """What answering the latest mail of a conversation needs, taken from its Inbound's meta
    when the worker starts the turn (the dialogue copies nothing into its replies)."""

    message_id: str
    references: tuple[str, ...]
    subject: str
    reply_to: str
    exchange: str


class EmailChannel(BaseChannel):
    name: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=20_000,
        buttons="numbered",
        max_buttons=20,
        max_button_label=200,
        attachments=True,
        threads=True,
    )

    def __init__(
        self,
        *,
        sender: str,
        smtp: SmtpServer,
        signing_key: str | None = None,
        autoreply_period: float = 3600.0,
        max_attachment_bytes: int = 10 * 1024 * 1024,
        max_replies_per_period: int = 10,
        ledger: ReplyLedger | None = None,
        verifier: mailgun.Verifier | None = None,
        contexts: int = 10_000,
    ) -> None:
        self._from = sender
        self._address = parseaddr(sender)[1].lower()
        self._domain = mime.address_domain(sender)
        self._smtp = smtp
        self._period = autoreply_period
        self._max_attachment = max_attachment_bytes
        self._max_replies = max_replies_per_period
        self._ledger: ReplyLedger = ledger or MemoryReplyLedger()
        self._verifier = verifier or (
            mailgun.Verifier(signing_key.encode()) if signing_key else None
        )
        self._contexts: OrderedDict[str, ReplyContext] = OrderedDict()
        self._max_contexts = contexts

    # -- inbound ---------------------------------------------------------------------------

    def precheck(self, req: WebhookRequest) -> None:
        if self._verifier is None:
            raise VerificationError("the e-mail webhook is off: set MAILGUN_SIGNING_KEY")
        self._verifier.precheck(req)

    def verify(self, req: WebhookRequest) -> None:
        if self._verifier is None:
            raise VerificationError("the e-mail webhook is off: set MAILGUN_SIGNING_KEY")
        self._verifier.verify(req)

    def parse(self, req: WebhookRequest) -> WebhookReply:
        """`message/rfc822` (the raw message) or a Mailgun route's form."""
        if mailgun.is_form(req):
            raw = mailgun.mime_from_form(mailgun.read_form(req))
        elif req.header("content-type").split(";", 1)[0].strip().lower() == "message/rfc822":
            raw = req.body
        else:
            raise PayloadError("send the message as message/rfc822 or as a Mailgun form")
        reply = self.parse_mail(raw)
        reply.claims = (mailgun.claim(req),)
        return reply

    def parse_mail(self, raw: bytes, *, envelope_from: str | None = None) -> WebhookReply:
        """One message as received (SMTP passes the envelope sender, which becomes the
        Return-Path). Mail RFC 3834 says not to answer gives no event, only a note."""
        if envelope_from is not None:
            raw = mime.with_return_path(raw, envelope_from)
        try:
            mail = mime.read(raw, max_attachment_bytes=self._max_attachment)
        except PayloadError as exc:
            log.warning("email.unreadable", reason=str(exc))
            raise
        why = refusal(mail, frozenset({self._address}))
        if why is not None:
            log.info("email.not_answered", reason=why, message_id=mail.message_id)
            return WebhookReply(note=f"not answered (RFC 3834): {why}")
        return WebhookReply(events=(self._inbound(mail),))

    def _inbound(self, mail: mime.Mail) -> Inbound:
        text = new_text(mail.body)
        if not text and not mail.attachments:
            text = compose.strip_prefixes(mail.subject)
        if mail.dropped:
            text = "\n\n".join([t for t in (text, *mail.dropped) if t])
        assert mail.return_path  # refusal() lets no mail through without one
        return Inbound(
            event_id=mail.message_id,
            conversation=ConversationRef(
                channel=self.name, chat_id=mail.sender, thread_id=compose.thread_of(mail)
            ),
            sender=Sender(id=mail.sender, name=mail.sender_name),
            text=text,
            attachments=mail.attachments,
            meta={
                "message_id": mail.message_id,
                "subject": mail.subject,
                "references": " ".join(mail.references),
                "reply_to": mail.return_path,
                "exchange": compose.exchange_key(mail, text),
            },
            raw={"headers": mime.header_items(mail.message)},
        )

    async def close(self) -> None:
        await self._ledger.close()

    async def before_turn(self, inbound: Inbound) -> None:
        """Remember how to answer this conversation's latest mail. This runs in the worker
        that sends the replies, so it holds across separate webhook and worker processes."""
        m = inbound.meta
        if inbound.channel != self.name or "message_id" not in m or not m.get("reply_to"):
            return
        key = inbound.conversation.key
        self._contexts[key] = ReplyContext(
            message_id=m["message_id"],
            references=tuple(m.get("references", "").split()),
            subject=m.get("subject", ""),
            reply_to=m["reply_to"],
            exchange=m.get("exchange", ""),
        )
        self._contexts.move_to_end(key)
        while len(self._contexts) > self._max_contexts:
            self._contexts.popitem(last=False)

    # -- outbound --------------------------------------------------------------------------

    async def send(self, msg: Outbound) -> SentMessage:
        conv = msg.conversation
        ctx = self._contexts.get(conv.key)
        to = ctx.reply_to if ctx else (msg.reply_to or conv.chat_id)
        if ctx is not None and not await self._may_answer(ctx):
            return SentMessage(extra={"suppressed": "rfc3834"})
        parts = split_text(msg.text, self.capabilities.max_text) or [""]

        async def mail_part(part: str, last: bool) -> SentMessage:
            mail, message_id = self._compose(msg, part, msg.buttons if last else (), to, ctx)
            if last:
                self._attach(mail, msg)
            await self._deliver(mail, to)
            return SentMessage(platform_id=message_id)

        steps: list[Step] = [
            partial(mail_part, part, i == len(parts) - 1) for i, part in enumerate(parts)
        ]
        return await send_steps(msg, steps)

    def _compose(
        self,
        msg: Outbound,
        text: str,
        buttons: tuple[Button, ...],
        to: str,
        ctx: ReplyContext | None,
    ) -> tuple[EmailMessage, str]:
        thread = msg.conversation.thread_id or "0" * 16
        message_id = compose.new_message_id(thread, compose.plain_body(text, buttons), self._domain)
        mail = compose.reply(
            sender=self._from,
            to=to,
            subject=ctx.subject if ctx else "",
            text=text,
            buttons=buttons,
            message_id=message_id,
            in_reply_to=ctx.message_id if ctx else None,
            references=(*ctx.references, ctx.message_id) if ctx else (),
        )
        return mail, message_id

    @staticmethod
    def _attach(mail: EmailMessage, msg: Outbound) -> None:
        for att in msg.attachments:
            if att.content is not None:
                maintype, _, subtype = (att.mime_type or "application/octet-stream").partition("/")
                mail.add_attachment(
                    att.content, maintype=maintype, subtype=subtype, filename=att.name or "file"
                )

    async def _may_answer(self, ctx: ReplyContext) -> bool:
        """At most one reply per sender for the same exchange in a period, and at most
        `max_replies_per_period` answered mails per sender: a responder that escapes the
        header checks still cannot keep a loop going."""
        if self._period <= 0:
            return True
        said = f"email:said:{ctx.reply_to}:{ctx.exchange}"
        if not await self._ledger.claim(said, ctx.message_id, self._period):
            log.warning("email.autoreply_suppressed", reason="repeat within the period")
            return False
        answered = await self._ledger.count(
            f"email:answered:{ctx.reply_to}", ctx.message_id, self._period
        )
        if answered > self._max_replies:
            log.warning("email.autoreply_suppressed", reason="sender over the period's limit")
            return False
        return True

    async def _deliver(self, mail: EmailMessage, to: str) -> None:
        """Sent with the null envelope sender `<>`, as RFC 3834 advises for automatic replies:
        a bounce of a reply can never come back to be answered."""
        s = self._smtp
        implicit = s.port == 465
        try:
            await aiosmtplib.send(
                mail,
                sender="",
                recipients=[to],
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=implicit,
                start_tls=None if implicit else s.starttls,
                tls_context=s.tls_context,
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            temporary = all(400 <= c < 500 for c in codes)  # 4xx: "try again later"
            kind = ChannelUnreachable if temporary else SendRefused
            raise kind(f"smtp refused the recipient ({codes})") from None
        except aiosmtplib.SMTPResponseException as exc:
            kind = ChannelUnreachable if 400 <= exc.code < 500 else SendRefused
            raise kind(f"smtp {exc.code}: {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ChannelUnreachable(f"smtp unreachable: {exc!r}") from None
