"""E-mail as an auto-responder: mail in over SMTP or a signed webhook, RFC 3834 replies out."""

from adapters.email.channel import EmailChannel, ReplyContext, SmtpServer
from adapters.email.rfc3834 import MemoryReplyLedger, ReplyLedger

__all__ = ["EmailChannel", "MemoryReplyLedger", "ReplyContext", "ReplyLedger", "SmtpServer"]
