"""The bot's "is typing…" in Slack: a classic bot has no typing indicator, but an app may show a
status under a thread (`assistant.threads.setStatus`, scope `chat:write`; in AI-assistant
threads, and in channels and DMs since Slack opened it to them). Slack removes it when the app
posts in that thread, or after two minutes; a reply that goes elsewhere (top level) clears it
with an empty status."""

from __future__ import annotations

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.models import ConversationRef, Inbound

log = structlog.get_logger(__name__)

NOT_FOR_THIS_APP = frozenset(
    {"missing_scope", "not_allowed_token_type", "unknown_method", "method_deprecated"}
)
"""Refusals that will not change from one message to the next: the status is given up (one
log line) until the process restarts."""


class ThreadStatus:
    """Shown by `show` when a turn begins, taken away by `clear` once its reply is out."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._shown: dict[str, tuple[str, str]] = {}
        """conversation key → (channel, thread_ts) where a status is up."""

    async def show(self, client: AsyncWebClient, inbound: Inbound) -> None:
        conv = inbound.conversation
        thread = conv.thread_id or inbound.meta.get("ts")
        if not self._text or inbound.kind != "message" or not thread:
            return
        if await self._set(client, conv.chat_id, thread, self._text):
            self._shown[conv.key] = (conv.chat_id, thread)

    async def clear(self, client: AsyncWebClient, conv: ConversationRef) -> None:
        shown = self._shown.pop(conv.key, None)
        if shown is None or shown == (conv.chat_id, conv.thread_id):
            return  # nothing up, or the reply went into that thread: Slack took it away
        await self._set(client, shown[0], shown[1], "")

    async def _set(self, client: AsyncWebClient, channel: str, thread: str, text: str) -> bool:
        try:
            await client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread, status=text
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            if error in NOT_FOR_THIS_APP:
                self._text = ""
                log.warning("slack.typing_unavailable", error=error, hint="scope chat:write")
            else:  # only a courtesy: the turn goes on
                log.info("slack.typing_failed", error=error)
            return False
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.info("slack.typing_failed", error=type(exc).__name__)
            return False
        return True
