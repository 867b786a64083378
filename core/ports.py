"""The seams of the core, in one place: what the engine and the turn call, and who plugs in.

Each protocol says who implements it; the data that crosses a seam (an intent model's answer,
a dialogue's outcome, a handoff record) is defined beside it. Everything here is a type: the
implementations live in their own modules (`core.queue`, `core.redis`, `adapters/`,
`integrations/`...), and `gateway/` chooses one of each at start-up.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from core.backlog import EditPolicy
from core.channel import SentMessage, WebhookReply, WebhookRequest
from core.models import Capabilities, Inbound, Outbound
from core.session import Session

# -- the intent model -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntentScore:
    """One intent of an `NluResult`'s ranking, with the model's confidence in it."""

    intent: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Entity:
    """A value found in the text: `type` is the extractor's name (email, phone, order_id...)."""

    type: str
    value: Any
    text: str
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class NluResult:
    """What the intent model understood of one message: the best intent (None when none is
    likely enough), the ranking the dialogue clarifies from, and the entities found."""

    text: str
    intent: str | None
    confidence: float
    ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    extracted: bool = False
    """True when the parser already looked for entities (in the text it read): no entities
    then means none, and the dialogue does not look again."""

    @classmethod
    def empty(cls, text: str = "") -> NluResult:
        return cls(text=text, intent=None, confidence=0.0)


class IntentParser(Protocol):
    """The intent model as the turn sees it. `parse` never raises on odd text. Implemented by
    `core.nlu.parser.ModelParser`; the turn runner calls it once per turn."""

    async def parse(self, text: str) -> NluResult: ...

    def ready(self) -> bool: ...


# -- the dialogue ---------------------------------------------------------------------------


@dataclass(slots=True)
class TurnOutcome:
    """What the dialogue decided in one turn: the replies, and the intent it settled on when
    that differs from the model's (a button press, a clarification)."""

    replies: Sequence[Outbound] = ()
    intent: str | None = None
    confidence: float | None = None
    handoff: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Dialogue(Protocol):
    """The flow runner as the turn sees it: it reads and updates `session` in place and says
    what to answer. Implemented by `core.dialogue.runner.FlowRunner`."""

    async def step(self, session: Session, inbound: Inbound, nlu: NluResult) -> TurnOutcome: ...


@runtime_checkable
class EditRule(Protocol):
    """A dialogue that says what an edited message does: `FlowRunner` gives the flows'
    `policy.edits`. The turn runner asks it when a backlog holds an edit or a delete; a
    dialogue without it gets `replace_unanswered`."""

    @property
    def edits(self) -> EditPolicy: ...


class FeedbackLog(Protocol):
    """Remembers which conversations were asked "Did that help?" beyond a session's life.
    Implemented by `core.sql.store.SqlConversations`; the flow runner asks it."""

    async def asked_since(self, conversation_key: str, since: float) -> bool: ...


class Actions(Protocol):
    """The actions a flow's `call:` steps run by name. Implemented by
    `integrations.registry.ActionRegistry`; the flow interpreter calls it."""

    def names(self) -> Collection[str]:
        """Every action this registry can run, for the loader's undefined-action check."""
        ...

    async def call(self, name: str, args: Mapping[str, Any], key: str | None = None) -> Any:
        """Run the action; raises `core.errors.ActionError` when it fails. `key` names this call
        in this turn: a turn run again (its session could not be saved) passes the same key, so
        a backend that honours it does the work once. Raises `ActionRefused` (with what to tell
        the customer) when an abuse limit says no."""
        ...


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    """What a person needs to pick the conversation up without asking again."""

    conversation: str
    channel: str
    queue: str
    intent: str | None
    confidence: float | None
    slots: dict[str, Any]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    at: float = 0.0
    key: str = ""
    """Idempotency key of the turn's handoff: the same when the turn is run again."""


class HandoffTarget(Protocol):
    """Where a flow's `handoff:` sends the conversation. Implemented by
    `integrations.handoff.LogHandoff` and `WebhookHandoff` (wrapped by
    `integrations.guard.GuardedHandoff`); the flow interpreter calls it."""

    async def notify(self, record: HandoffRecord) -> None:
        """Deliver the record; failures are the target's to log, never the conversation's.
        Raises `core.errors.ActionRefused` when a limit keeps the record from any person: the
        bot then keeps the conversation and says why."""
        ...


# -- channels -------------------------------------------------------------------------------


@runtime_checkable
class Channel(Protocol):
    """One per module in `adapters/`. `verify` and `parse` are pure (no I/O); `send` talks to the
    platform and raises a `core.errors.ChannelSendError` subclass (`RetryAfter`,
    `ChannelUnreachable`, `SendRefused`) when it fails. `start`/`close` open and close the
    adapter's HTTP client. The gateway's webhook route calls the first three, the outbox `send`
    and `before_turn`; `core.channel.BaseChannel` gives the optional parts."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def precheck(self, req: WebhookRequest) -> None:
        """The checks that need no body (a secret header, a timestamp's age), run before the
        body is read: a request that cannot pass is refused at once instead of being waited for
        while its body trickles in. `req.body` is empty here. Raises `VerificationError`; must
        never refuse a request that `verify` would accept. Most adapters do nothing."""
        ...

    def verify(self, req: WebhookRequest) -> None: ...

    def parse(self, req: WebhookRequest) -> WebhookReply: ...

    async def send(self, msg: Outbound) -> SentMessage: ...

    async def before_turn(self, inbound: Inbound) -> None:
        """Called by the worker before the bot handles a message (answer a button press's
        spinner, show typing). Most adapters do nothing."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class RateLimiter(Protocol):
    """Spacing of sends to one chat, as platforms demand. Implemented by
    `core.ratelimit.MemoryRateLimiter` and `core.redis.ratelimit.RedisRateLimiter`; the outbox
    waits on it before each send."""

    async def wait(self, key: str, interval: float) -> None:
        """Return once a message to `key` may go, at least `interval` seconds after the last."""
        ...


# -- the queue ------------------------------------------------------------------------------


@dataclass(slots=True)
class Delivery:
    """One queued event handed to a worker. `attempts` counts deliveries, this one included.
    (Not frozen: one is built per message, and a frozen dataclass sets each field through
    `object`; nothing changes one after it is made.)"""

    entry_id: str
    inbound: Inbound
    attempts: int = 1

    @property
    def conversation_key(self) -> str:
        return self.inbound.conversation.key


class Queue(Protocol):
    """The inbox. `put` returns only once the event is durably queued (False: a duplicate,
    already queued), or raises `QueueUnavailable`. Entries stay pending until `ack` or
    `dead_letter`. Implemented by `core.queue.MemoryQueue` and `core.redis.queue.RedisQueue`;
    the gateway's ingress puts, the engine takes, the turn runner acknowledges."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, inbound: Inbound) -> bool: ...

    async def take(self, max_items: int, timeout: float) -> list[Delivery]: ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    async def dead_letter(self, deliveries: Sequence[Delivery], error: str) -> None: ...

    async def depth(self) -> int: ...

    async def ping(self) -> None: ...


class SeenJournal(Protocol):
    """Where the memory queue keeps its dedupe keys across a restart: `core.sqlite.keys
    .SqliteKeys` in the embedded default (a file under DATA_DIR)."""

    async def recall(self) -> list[str]:
        """The keys recorded earlier that are still inside their window."""
        ...

    async def record(self, keys: Sequence[str], ttl: float) -> None: ...


# -- the stores -----------------------------------------------------------------------------


class SessionStore(Protocol):
    """Where sessions live between turns. `load` returns None for an unknown, expired or
    old-format session; `save` is atomic and raises `core.errors.StaleSession` when the stored
    session is as new or newer (another worker ran the conversation meanwhile). Implemented by
    `core.store.MemoryStore` and `core.redis.store.RedisStore`; the turn runner loads and
    saves."""

    async def load(self, key: str) -> Session | None: ...

    async def save(self, session: Session) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class SentLog(Protocol):
    """Which replies (by turn and index) went out already, so a retried turn sends none twice.
    Implemented by `core.store.MemorySentLog` and `core.redis.store.RedisSentLog`; the outbox
    reads and marks it."""

    async def seen(self, key: str) -> bool: ...

    async def mark(self, key: str) -> None: ...


class ClaimStore(Protocol):
    """Spent one-time credentials (`core.channel.Claim`), shared by every process that takes
    webhooks: `core.sqlite.keys.SqliteKeys` in the embedded default, `core.redis.claims
    .RedisClaims` with Redis. The gateway's webhook route is the one user."""

    async def claim(self, key: str, value: str, ttl: float, retry_for: float) -> bool:
        """True when `key` was free (now held with `value` for `ttl` s), or is held with this
        same `value` since less than `retry_for` s (the platform retrying: the queue's dedupe
        still knows the event); False when another value holds it, or the same one for longer
        (a replay the dedupe has forgotten). `StoreUnavailable` on an outage."""
        ...


# -- abuse limits ---------------------------------------------------------------------------


class Verdict(enum.Enum):
    """What `SenderLimit.hit` says about one inbound event."""

    ALLOW = "allow"
    WARN = "warn"
    """The first event over the limit in a window: answer once "slow down", handle no further."""
    DROP = "drop"
    """Further events over the limit: acknowledged and not answered."""


class SenderLimit(Protocol):
    """Inbound flood control per sender. `hit` counts one event of a sender and says what to do
    with it; `event_key` makes the count idempotent for a redelivered event (the Redis version
    keys the window by it). Implemented by `core.senderlimit.MemorySenderLimit` and
    `core.redis.ratelimit.RedisSenderLimit`; the turn runner screens each batch with it."""

    async def hit(self, sender_key: str, event_key: str) -> Verdict: ...


class Limits(Protocol):
    """Counting windows and claims, by key. Implemented by `core.limits.MemoryLimits` (one
    process) and `core.redis.limits.RedisLimits` (every process sharing one Redis); the web
    chat's guard and `integrations.guard` count with it."""

    async def hit(self, key: str, limit: int, window: float, event: str) -> float:
        """Count `event` under `key`: 0.0 when it is within `limit` events per `window` seconds,
        else the seconds until the oldest counted event leaves the window. A refused event is
        not counted; an event counted before (a turn run again) counts once and is allowed.
        A `limit` of 0 or less means no limit."""
        ...

    async def claim(self, key: str, period: float, owner: str) -> float:
        """0.0 when `owner` now holds `key` for `period` seconds (or held it already), else the
        seconds until the other owner's claim runs out."""
        ...

    async def release(self, key: str, owner: str) -> None:
        """Give up `owner`'s claim on `key` (the claimed work failed and may be tried again)."""
        ...

    async def close(self) -> None: ...


# -- between processes ----------------------------------------------------------------------

Handler = Callable[[bytes], Awaitable[None]]
"""Called with each message a `Relay` subscription receives."""


class Relay(Protocol):
    """Fire-and-forget broadcast on a topic to every subscribed process: a worker produces a
    reply, and the `serve` process that holds the user's socket delivers it. Implemented by
    `core.redis.relay.RedisRelay`; one process needs none."""

    async def publish(self, topic: str, message: bytes) -> None: ...

    async def subscribe(self, topic: str, handler: Handler) -> None:
        """Start calling `handler` for each message on `topic` (in the background)."""
        ...

    async def close(self) -> None: ...


class Transcript(Protocol):
    """What a conversation's page showed, both ways, so the web chat can show it again after a
    reload and catch up after a reconnect: `core.sqlite.transcript.SqliteTranscript` in the
    embedded default, `core.redis.transcript.RedisTranscript` with Redis. Entries are small
    JSON objects; each gets a number larger than any given before (`seq`), so a page asks for
    what came after the last one it has. A conversation's entries expire with its session."""

    async def add(self, conversation: str, entry: dict[str, Any]) -> int:
        """Store `entry`; its number. `StoreUnavailable` on an outage."""
        ...

    async def since(
        self, conversation: str, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest `limit` entries numbered above `after`, oldest first, each with `seq`."""
        ...

    async def close(self) -> None: ...
