"""Builds the flow runner from settings: flows, actions (demo shop), handoff target, entity
extractor, and hot reload (SIGHUP, and a file watcher when `flows_watch` is on)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from config.settings import Settings
from core.dialogue import Bot, FlowRunner, flow_files, load_bot
from core.entities import EntityExtractor, RegexEntity
from core.errors import FlowError, StartupError
from core.tasks import cancel_and_wait
from gateway.storage import build_limits
from integrations.guard import ActionGuard, GuardedHandoff, GuardSettings
from integrations.handoff import LogHandoff, WebhookHandoff
from integrations.registry import ActionRegistry
from integrations.shop import Shop, register_shop

log = structlog.get_logger(__name__)

WATCH_INTERVAL = 1.0


def regex_entities(bot: Bot) -> list[RegexEntity]:
    return [RegexEntity(e.name, e.pattern, e.case) for e in bot.entities.values()]


def flow_intents(bot: Bot) -> list[str]:
    """The intents the flows know (declared under `intents:`), sorted."""
    return sorted(bot.intents)


def build_guard(settings: Settings) -> ActionGuard:
    """Limits on actions with side effects and handoffs, shared through Redis when it is set."""
    return ActionGuard(
        build_limits(settings),
        GuardSettings(
            per_minute=settings.action_rate_limit,
            per_target=settings.action_target_limit,
            period=settings.action_repeat_period,
            handoffs_per_minute=settings.handoff_rate_limit,
        ),
    )


def build_registry(
    settings: Settings, shop: Shop | None = None, guard: ActionGuard | None = None
) -> ActionRegistry:
    registry = ActionRegistry(guard=guard)
    register_shop(registry, shop, settings.shop_api_url)
    return registry


@dataclass
class DialogueBundle:
    """What `load_dialogue` gives: `dialogue` for the engine, `extractor` for the intent
    parser, `intents` the flows use; `start`/`stop` (reload on SIGHUP and on file changes) are
    the "flows" part of the process (see `gateway.model_and_flows`)."""

    dialogue: FlowRunner
    extractor: EntityExtractor
    intents: list[str]
    directory: Path
    registry: ActionRegistry
    handoff: LogHandoff
    watch: bool = False
    guard: ActionGuard | None = None
    _watcher: asyncio.Task[None] | None = field(default=None, repr=False)
    _reloading: asyncio.Task[list[str]] | None = field(default=None, repr=False)
    _signals: bool = field(default=False, repr=False)

    def reload(self) -> list[str]:
        """Load the flows again; on any mistake keep the running ones and return the
        file:line messages (empty list: reloaded)."""
        try:
            bot = load_bot(self.directory, self.registry.names())
        except FlowError as exc:
            return self._refused(exc)
        self._apply(bot)
        return []

    async def reload_off_loop(self) -> list[str]:
        """`reload` with the files read and compiled in a thread: inside a running gateway that
        blocking work must not hold up webhooks and turns."""
        try:
            bot = await asyncio.to_thread(load_bot, self.directory, self.registry.names())
        except FlowError as exc:
            return self._refused(exc)
        self._apply(bot)
        return []

    def _reload_soon(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self.reload_off_loop())

    @staticmethod
    def _refused(exc: FlowError) -> list[str]:
        problems = [str(i) for i in exc.issues]
        for p in problems:
            log.error("flows.reload_refused", problem=p)
        return problems

    def _apply(self, bot: Bot) -> None:
        self.registry.declare_http(bot.actions)
        self.extractor.update(regex_entities(bot))
        self.dialogue.replace(bot)
        self.intents = flow_intents(bot)
        log.info("flows.reloaded", flows=len(bot.flows), files=len(bot.files))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
            self._signals = True
        if self.watch and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._signals = False
        await cancel_and_wait(self._watcher)
        self._watcher = None
        if self._reloading is not None:
            await asyncio.gather(self._reloading, return_exceptions=True)
            self._reloading = None
        await self.registry.close()
        if isinstance(self.handoff, WebhookHandoff):
            await self.handoff.close()
        if self.guard is not None:
            await self.guard.close()

    def _stamp(self) -> tuple[tuple[str, float], ...]:
        return tuple((str(p), p.stat().st_mtime) for p in flow_files(self.directory))

    async def _watch(self) -> None:
        seen = await asyncio.to_thread(self._stamp)
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                now = await asyncio.to_thread(self._stamp)
            except OSError:
                continue
            if now != seen:
                seen = now
                await self.reload_off_loop()


def load_dialogue(
    settings: Settings,
    *,
    threshold: float | Callable[[], float] | None = None,
    shop: Shop | None = None,
) -> DialogueBundle:
    """Load the flows in `settings.flows_dir`; broken flows stop the start with file:line.
    `threshold` is the intent model's own threshold (or a function giving it once the model has
    loaded), used when `confidence_threshold` is unset; else the flows' policy decides."""
    guard = build_guard(settings)
    registry = build_registry(settings, shop, guard)
    try:
        bot = load_bot(settings.flows_dir, registry.names())
    except FlowError as exc:
        raise StartupError(f"the flows have mistakes:\n{exc}") from exc
    registry.declare_http(bot.actions)
    handoff: LogHandoff = (
        WebhookHandoff(settings.handoff_webhook_url)
        if settings.handoff_webhook_url
        else LogHandoff()
    )
    # Entities are looked for in the text the intent model reads, never further.
    extractor = EntityExtractor(regex_entities(bot), max_chars=settings.nlu_max_chars)
    chosen = settings.confidence_threshold
    runner = FlowRunner(
        bot,
        registry,
        GuardedHandoff(handoff, guard),
        extractor,
        threshold=chosen if chosen is not None else threshold,
        margin=settings.ambiguity_margin,
        handoff_after=settings.handoff_after,
        feedback_every=settings.feedback_every,
    )
    return DialogueBundle(
        dialogue=runner,
        extractor=extractor,
        intents=flow_intents(bot),
        directory=settings.flows_dir,
        registry=registry,
        handoff=handoff,
        watch=settings.flows_watch,
        guard=guard,
    )
