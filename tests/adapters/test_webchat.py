"""The web chat channel's memory of sessions without a socket is bounded."""

from __future__ import annotations

import pytest

import adapters.webchat as webchat
from adapters.webchat import WebChatChannel
from core.models import ConversationRef, Outbound


async def test_replies_kept_for_absent_visitors_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webchat, "_SESSIONS_KEEP", 3)
    ch = WebChatChannel()
    for i in range(10):  # visitors who asked and closed the tab before the answer
        session = f"visitor-{i:04d}"
        conv = ConversationRef(channel="webchat", chat_id=session)
        await ch.send(Outbound(conversation=conv, text=f"answer {i}"))
    [kept] = ch.attach("visitor-0009", _sink)
    assert kept == {"text": "answer 9", "buttons": [], "at": kept["at"]}
    assert ch.attach("visitor-0000", _sink) == []  # the oldest was let go
    assert len(ch._undelivered) <= 3 and len(ch._known) <= 3


async def _sink(frame: webchat.Frame) -> None:
    return None
