"""Every process picks up a newly deployed model without a restart: it looks at the model
pointer (MODEL_DIR) every few seconds, and at once when a deployment is announced on the relay
(Redis pub/sub, at scale). The new model is loaded off the event loop while the old one answers,
then swapped in between two batches: no message waits for a model, none is misread."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog

from core.errors import ModelDirError
from core.nlu.parser import ModelParser
from core.ports import Relay
from core.tasks import BackgroundTask

log = structlog.get_logger(__name__)

TOPIC = "model"
"""The relay topic a deployment is announced on (the message: the release's name)."""


async def announce(relay: Relay, release: Path) -> None:
    """Tell every process that listens to look at the pointer now."""
    await relay.publish(TOPIC, release.name.encode())


class ModelWatcher(BackgroundTask):
    """Keeps `parser` serving what its `model_dir` pointer names. An async context manager: the
    gateway enters it with the other parts of a process and leaves it at shutdown. A release
    that fails to load is logged and not tried again; the model served stays. `relay` is the
    watcher's own: closed on exit."""

    task_name = "model-watch"

    def __init__(self, parser: ModelParser, *, interval: float, relay: Relay | None = None):
        super().__init__()
        self.parser = parser
        self.interval = interval
        self.relay = relay
        self.swaps = 0
        self.last_swap_s: float | None = None
        """How long the last new model took to load (the old one answered meanwhile)."""
        self._wake = asyncio.Event()
        self._refused: set[Path] = set()

    async def _open(self) -> None:
        if self.relay is not None:
            await self.relay.subscribe(TOPIC, self._announced)

    async def _close(self) -> None:
        if self.relay is not None:
            await self.relay.close()

    async def _announced(self, _message: bytes) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the watch must outlive one bad look
                log.error("nlu.watch_failed", error=repr(exc))

    async def check(self) -> bool:
        """Swap when the pointer names another release than the one served; True if swapped.
        Before the first load has finished there is nothing to swap."""
        served = self.parser.loaded_from
        if served is None or not self.parser.ready():
            return False
        pointer = self.parser.model_dir
        target = pointer.resolve() if pointer.exists() else None
        if target is None or target == served or target in self._refused:
            return False
        started = time.perf_counter()
        try:
            await self.parser.swap(target)
        except ModelDirError as exc:
            self._refused.add(target)
            log.error("nlu.swap_refused", model_dir=str(target), reason=str(exc))
            return False
        self.last_swap_s = time.perf_counter() - started
        self.swaps += 1
        return True
