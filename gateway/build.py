"""One builder for every way the gateway runs: `build_gateway(settings, role)` makes the
process's `Services` and lists, in `ROLES`, the parts the role starts (in order) and stops (in
reverse). A new part (an ingress loop, the console) is one function here and one entry per role
that runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiohttp import web

from adapters.webchat import WebChatChannel
from config.settings import Settings, SettingsError
from core.engine import Engine, EngineSettings
from core.metrics import Metrics
from core.outbox import Outbox
from core.ports import Channel, Dialogue, IntentParser
from gateway.app import create_probe_app
from gateway.channels import build_channels
from gateway.desk import build_desk
from gateway.lifecycle import Part
from gateway.privacy import Retention
from gateway.services import Services
from gateway.smtp_listener import smtp_listener
from gateway.storage import build_storage

if TYPE_CHECKING:
    # Imported when used: the model pulls in torch, seconds of start-up that a process
    # given its own intent parser (tests, benches) does not need.
    from gateway.model_and_flows import ModelAndFlows

Role = Literal["serve", "worker", "chat"]
"""`serve`: the web app (webhooks, web chat, health), with the worker unless it runs apart;
`worker`: takes from the shared queue and answers, no HTTP but an optional probe; `chat`: the
terminal conversation, the worker in process and no flood control."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the part factories read: the built services and the role's options."""

    services: Services
    model_and_flows: ModelAndFlows | None
    """None when the caller brought its own intent parser and dialogue (and runs them)."""
    model_in_background: bool
    probe_port: int | None


PartsOf = Callable[[Plan], Iterator[Part]]
"""Yields the parts of one kind that a plan needs (none when that kind is off)."""


def storage(plan: Plan) -> Iterator[Part]:
    """What the stores share (a Redis connection, the SQLite file) is closed last, after the
    session store and the queue (which keeps, or spills to disk, what was not taken)."""
    stored = plan.services.storage
    for i, close in enumerate(stored.closers):
        yield Part.hooks("storage connection" + (f" {i + 1}" if i else ""), stop=close)
    if stored.transcript is not None:
        yield Part.hooks("web chat transcript", stop=stored.transcript.close)
    yield Part.hooks("session store", stop=stored.store.close)
    yield Part.hooks("queue", stored.queue.start, stored.queue.close)


def desk(plan: Plan) -> Iterator[Part]:
    """The conversation store (migrated on open) and the console's news; started before the
    engine records its first turn, closed after it stopped."""
    support = plan.services.desk
    if support is not None:
        yield Part("support desk", lambda: support)


def channels(plan: Plan) -> Iterator[Part]:
    for name, channel in plan.services.channels.items():
        yield Part.hooks(f"channel {name}", channel.start, channel.close)


def model_and_flows(plan: Plan) -> Iterator[Part]:
    """The model and the flows, then the watch for a newly deployed model (stopped before the
    model, so no swap starts on a closing parser)."""
    loaded = plan.model_and_flows
    if loaded is None:
        return
    yield from loaded.parts(background=plan.model_in_background)
    from gateway.model_release import model_watcher

    plan.services.metrics.known_intents = lambda: loaded.flows.dialogue.bot.intents
    yield Part("model watcher", lambda: model_watcher(plan.services.settings, loaded.nlu))


def retention(plan: Plan) -> Iterator[Part]:
    """The daily deletion of records older than RETENTION_DAYS (the conversation store's, and
    Redis's dead letters; the embedded SQLite keys expire on their own)."""
    settings = plan.services.settings
    desk = plan.services.desk
    if settings.retention_days and (desk is not None or settings.redis_url is not None):
        db = desk.db if desk is not None else None
        yield Part("retention", lambda: Retention(settings, db=db))


def smtp(plan: Plan) -> Iterator[Part]:
    listener = smtp_listener(plan.services)
    if listener is not None:
        yield Part.hooks("smtp listener", listener.start, listener.stop)


def ingress(plan: Plan) -> Iterator[Part]:
    """The ways in that need no public URL (Socket Mode, long polling, IMAP) the settings ask
    for; each loop is its own context manager, entered once."""
    from gateway.ingress import ingresses

    for loop in ingresses(plan.services):
        plan.services.ingresses.append(loop)
        yield Part(f"ingress {type(loop).__name__}", lambda loop=loop: loop)


def probe(plan: Plan) -> Iterator[Part]:
    """/healthz, /readyz and /metrics of a worker, on `probe_port`."""
    port = plan.probe_port
    if port is None:
        return
    services = plan.services

    @asynccontextmanager
    async def serving() -> AsyncIterator[None]:
        runner = web.AppRunner(create_probe_app(services), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, services.settings.host, port).start()
            yield
        finally:
            await runner.cleanup()

    yield Part("probe", serving)


def engine(plan: Plan) -> Iterator[Part]:
    """Started last, so nothing is taken from the queue before the rest is up; stopped first:
    turns in flight finish (up to SHUTDOWN_TIMEOUT) before anything they use is closed."""
    running = plan.services.engine
    if running is None:
        return

    async def stop() -> None:
        await running.stop(plan.services.settings.shutdown_timeout)

    yield Part.hooks("engine", running.start, stop)


ROLES: dict[Role, tuple[PartsOf, ...]] = {
    "serve": (storage, desk, channels, model_and_flows, smtp, ingress, retention, engine),
    "worker": (storage, desk, channels, model_and_flows, retention, engine, probe),
    "chat": (storage, channels, model_and_flows, engine),
}
"""The parts of each role, in the order they start."""


def wants_worker(settings: Settings, durable: bool) -> bool:
    if settings.embedded_worker == "auto":
        return not durable
    return settings.embedded_worker == "on"


def build_gateway(
    settings: Settings,
    role: Role,
    *,
    model_and_flows: ModelAndFlows | None = None,
    nlu: IntentParser | None = None,
    dialogue: Dialogue | None = None,
    channels: Mapping[str, Channel] | None = None,
    with_worker: bool | None = None,
    model_in_background: bool | None = None,
    probe_port: int | None = None,
    support_desk: bool | None = None,
) -> Services:
    """The process for `role`, built (nothing started: `services.running()` does that, and the
    web app does it through `cleanup_ctx`).

    The intent model and flows are the product's (`load_model_and_flows`), or the given
    `model_and_flows`; a caller that gives `nlu` and `dialogue` instead starts and stops them
    itself. `channels` are added to those the settings turn on. `with_worker` overrides
    EMBEDDED_WORKER in `serve` (`worker` and `chat` always run it). In `serve` the model's
    weights load while the server already answers (`/readyz` red until then) unless
    `model_in_background` is False; elsewhere they are loaded before anything is taken from the
    queue. `probe_port` gives a worker its health and metrics endpoints."""
    if (nlu is None) != (dialogue is None) or (nlu is not None and model_and_flows is not None):
        raise TypeError("give nlu and dialogue together, or model_and_flows, or neither")
    if nlu is None or dialogue is None:
        if model_and_flows is None:
            from gateway.model_and_flows import load_model_and_flows

            model_and_flows = load_model_and_flows(settings)
        nlu, dialogue = model_and_flows.nlu, model_and_flows.dialogue
    # The support desk (conversation store, handoff, console) wraps the dialogue and records
    # each turn; by default in `serve` and `worker`, never in the terminal chat.
    if support_desk is None:
        support_desk = role != "chat"
    desk = build_desk(settings) if support_desk else None
    if desk is not None:
        dialogue = desk.dialogue(dialogue)
    metrics = Metrics()
    stored = build_storage(settings, metrics)
    live = build_channels(settings)
    live.update(channels or {})
    chat = live.get(WebChatChannel.name)
    if isinstance(chat, WebChatChannel):
        chat.transcript = stored.transcript
    if desk is not None and settings.console_notify_slack_channel and "slack" not in live:
        raise SettingsError(
            "CONSOLE_NOTIFY_SLACK_CHANNEL needs the Slack channel on (SLACK_BOT_TOKEN and "
            "SLACK_SIGNING_SECRET)"
        )
    outbox = Outbox(live, stored.sent, stored.limiter, metrics, attempts=settings.send_attempts)
    if role != "serve":
        with_worker = True
    elif with_worker is None:
        with_worker = wants_worker(settings, stored.durable)
    worker = (
        Engine(
            queue=stored.queue,
            store=stored.store,
            nlu=nlu,
            dialogue=dialogue,
            outbox=outbox,
            metrics=metrics,
            settings=EngineSettings(
                concurrency=settings.concurrency,
                prefetch=settings.prefetch,
                max_attempts=settings.max_attempts,
                history_turns=settings.history_turns,
            ),
            # A sender over the limit is told once to slow down and the rest of the flood goes
            # unanswered; not in the terminal chat, where stdin may be a long script.
            senders=stored.senders if role != "chat" else None,
            recorder=desk.recorder(outbox.deliver) if desk is not None else None,
        )
        if with_worker
        else None
    )
    services = Services(settings, metrics, stored, live, outbox, nlu, dialogue, worker)
    services.desk = desk
    background = role == "serve" if model_in_background is None else model_in_background
    plan = Plan(services, model_and_flows, background, probe_port)
    services.parts = tuple(part for parts_of in ROLES[role] for part in parts_of(plan))
    return services
