"""The outbox: a split reply whose second part fails is resumed, not sent again from the top."""

from __future__ import annotations

from core.errors import RetryAfter
from core.metrics import Metrics
from core.models import Capabilities, ConversationRef, Outbound
from core.outbox import Outbox
from core.ratelimit import MemoryRateLimiter
from core.store import MemorySentLog
from tests.support.doubles import RecordingChannel

CHAT = ConversationRef(channel="parts", chat_id="c1")


def parts_channel(refuse: set[int]) -> RecordingChannel:
    """Each line its own platform call; the calls listed in `refuse` fail once."""
    return RecordingChannel(
        "parts",
        capabilities=Capabilities(max_text=100, buttons="numbered"),
        per_line=True,
        fail_calls={n: RetryAfter(0.0, "429") for n in refuse},
    )


def outbox(channel: RecordingChannel) -> Outbox:
    return Outbox({"parts": channel}, MemorySentLog(), MemoryRateLimiter(), Metrics(), backoff=0)


async def test_a_retry_resumes_after_the_parts_that_went_out() -> None:
    channel = parts_channel({2, 4})
    sent = await outbox(channel).deliver("e1:0", Outbound(conversation=CHAT, text="a\nb\nc"))
    assert sent is True
    assert channel.delivered == ["a", "b", "c"]


async def test_a_whole_message_is_sent_again_when_nothing_went_out() -> None:
    channel = parts_channel({1})
    await outbox(channel).deliver("e1:0", Outbound(conversation=CHAT, text="a\nb"))
    assert channel.delivered == ["a", "b"]
