"""The outbox: a split reply whose second part fails is resumed, not sent again from the top."""

from __future__ import annotations

from typing import ClassVar

from core.channel import BaseChannel, SentMessage, Step, send_steps
from core.errors import RetryAfter
from core.metrics import Metrics
from core.models import Capabilities, ConversationRef, Outbound
from core.outbox import Outbox
from core.ratelimit import MemoryRateLimiter
from core.store import MemorySentLog

CHAT = ConversationRef(channel="parts", chat_id="c1")


class PartsChannel(BaseChannel):
    """Sends each line as its own platform call; the calls listed in `refuse` fail once."""

    name: ClassVar[str] = "parts"
    capabilities: ClassVar[Capabilities] = Capabilities(max_text=100, buttons="numbered")

    def __init__(self, refuse: set[int]) -> None:
        self.refuse = refuse
        self.calls = 0
        self.delivered: list[str] = []

    async def send(self, msg: Outbound) -> SentMessage:
        async def one(line: str) -> SentMessage:
            self.calls += 1
            if self.calls in self.refuse:
                raise RetryAfter(0.0, "429")
            self.delivered.append(line)
            return SentMessage(platform_id=line)

        steps: list[Step] = [lambda line=line: one(line) for line in msg.text.split("\n")]
        return await send_steps(msg, steps)


def outbox(channel: PartsChannel) -> Outbox:
    return Outbox({"parts": channel}, MemorySentLog(), MemoryRateLimiter(), Metrics(), backoff=0)


async def test_a_retry_resumes_after_the_parts_that_went_out() -> None:
    channel = PartsChannel(refuse={2, 4})
    sent = await outbox(channel).deliver("e1:0", Outbound(conversation=CHAT, text="a\nb\nc"))
    assert sent is True
    assert channel.delivered == ["a", "b", "c"]


async def test_a_whole_message_is_sent_again_when_nothing_went_out() -> None:
    channel = PartsChannel(refuse={1})
    await outbox(channel).deliver("e1:0", Outbound(conversation=CHAT, text="a\nb"))
    assert channel.delivered == ["a", "b"]
