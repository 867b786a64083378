"""The intent model as the engine's `IntentParser`: inference runs on one dedicated thread with
dynamic micro-batching (messages that arrive together share one forward pass), so the event
loop never waits on torch; entities are looked for on another thread meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import torch

from core.entities import extract_off_loop
from core.entities.offloop import BUDGET
from core.nlu import artifacts, int8
from core.nlu.predictor import Predictor
from core.ports import Entity, IntentScore, NluResult

log = structlog.get_logger(__name__)

Extract = Callable[[str], tuple[Entity, ...]]


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """How the model is served: threads, batching of concurrent messages, the text read, and the
    wait for a model still loading."""

    threads: int = 2
    quantize: bool | None = None
    """int8 (True), fp32 (False), or as the accuracy check made at training decided (None)."""
    packed: bool = True
    """The encoder's layers run on the real tokens only (`core.nlu.unpad`); False only for the
    benchmark's before-and-after."""
    wait_ms: float = 3.0
    """How long a batch waits for company once messages are arriving concurrently."""
    max_batch: int = 32
    max_chars: int = 512
    top_k: int = 5
    load_wait: float = 120.0
    """Seconds a message that arrives while the model is loading waits for it."""
    extract_budget: float = BUDGET
    """Seconds a message waits for its entities (see `core.entities.offloop`)."""


@dataclass(slots=True)
class _Job:
    text: str
    future: asyncio.Future[NluResult]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class BatchLog:
    """What the batcher did, for the benchmark: the texts of every forward pass."""

    batches: list[list[str]] = field(default_factory=list)


def clean(text: str, max_chars: int) -> str:
    """Control and format characters become spaces (one for one, so entity offsets still fit
    the original text) and the text is cut to `max_chars`."""
    cut = text[:max_chars]
    if cut.isascii() and cut.isprintable():  # the common case: nothing to replace
        return cut
    return "".join(" " if unicodedata.category(c)[0] == "C" else c for c in cut)


class ModelParser:
    """`ready()` is false until `start()` (or `load()`) has loaded the model directory."""

    def __init__(
        self,
        model_dir: Path,
        config: ServeConfig | None = None,
        *,
        extract: Extract | None = None,
    ):
        self.model_dir = model_dir
        self.config = config or ServeConfig()
        self.extract = extract
        self.predictor: Predictor | None = None
        self.loaded_from: Path | None = None
        """The directory the served model was read from (`model_dir` resolved at the load)."""
        self.record: BatchLog | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loaded = threading.Event()
        self._loading: asyncio.Future[None] | None = None

    # -- life cycle -----------------------------------------------------------------------

    def ready(self) -> bool:
        return self._loaded.is_set() and self._thread is not None and self._thread.is_alive()

    @property
    def threshold(self) -> float:
        return self.predictor.loaded.threshold if self.predictor else 0.5

    def load(self) -> None:
        """Blocking load; `ModelDirError` names the path and the reason."""
        torch.set_num_threads(self.config.threads)
        self.predictor, self.loaded_from = self._prepare(self.model_dir)
        loaded = self.predictor.loaded
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="nlu-inference", daemon=True)
            self._thread.start()
        self._loaded.set()
        log.info(
            "nlu.loaded",
            model_dir=str(self.model_dir),
            intents=len(loaded.labels),
            encoder=loaded.fingerprint.get("encoder"),
            quantized=int8.wanted(self.config.quantize, loaded.fingerprint),
            threshold=loaded.threshold,
        )

    def _prepare(self, model_dir: Path) -> tuple[Predictor, Path]:
        """Read and warm up a model; `model_dir` is resolved once, so a pointer switched
        meanwhile cannot mix two releases."""
        path = model_dir.resolve()
        loaded = artifacts.load(path, quantize=self.config.quantize, packed=self.config.packed)
        predictor = Predictor(loaded)
        predictor.predict(["warm up"])
        return predictor, path

    async def swap(self, model_dir: Path | None = None) -> Path:
        """Serve another model without a pause: it is loaded and warmed up on a thread while
        the current one goes on answering, then takes over between two batches (a batch reads
        the model once). A directory that cannot be loaded raises `ModelDirError`, and the
        current model stays. Returns the directory now served."""
        predictor, path = await asyncio.to_thread(self._prepare, model_dir or self.model_dir)
        before, self.predictor, self.loaded_from = self.loaded_from, predictor, path
        log.info(
            "nlu.swapped", model_dir=str(path), before=str(before), intents=len(predictor.labels)
        )
        return path

    async def start(self) -> None:
        """Loads off the event loop, so `/readyz` can answer (red) meanwhile; messages that
        arrive during the load wait for it (up to `load_wait`) instead of being misread."""
        if self._loaded.is_set():
            return
        if self._loading is None or (self._loading.done() and self._loading.exception()):
            self._loading = asyncio.ensure_future(asyncio.to_thread(self.load))
        await asyncio.shield(self._loading)

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join, 10)
        self._loaded.clear()
        self._loading = None

    # -- the seam -------------------------------------------------------------------------

    async def parse(self, text: str) -> NluResult:
        if not self.ready() and self._loading is not None and not self._loading.done():
            with contextlib.suppress(Exception):  # a failed load is reported by start()
                await asyncio.wait_for(asyncio.shield(self._loading), self.config.load_wait)
        if not self.ready():
            return NluResult.empty(text)
        loop = asyncio.get_running_loop()
        job = _Job(text, loop.create_future(), loop)
        self._jobs.put(job)
        seen = clean(text, self.config.max_chars)
        if self.extract is None or not seen.strip():
            return await job.future
        # Not on the inference thread: a message's extraction must not hold up the forward
        # pass of the others in its batch.
        result, entities = await asyncio.gather(
            job.future, extract_off_loop(self.extract, seen, self.config.extract_budget)
        )
        return dataclasses.replace(result, entities=entities, extracted=True)

    # -- the inference thread -------------------------------------------------------------

    def _serve(self) -> None:
        last_size = 1
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            stop = self._gather(batch, patient=last_size > 1)
            last_size = len(batch)
            self._run(batch)
            if stop:
                return

    def _gather(self, batch: list[_Job], patient: bool) -> bool:
        """Takes what is already queued; waits up to `wait_ms` for more only when messages have
        been arriving together (a lone message is not delayed). True when asked to stop."""
        deadline = time.perf_counter() + self.config.wait_ms / 1000
        while len(batch) < self.config.max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                left = deadline - time.perf_counter()
                if not patient or left <= 0:
                    return False
                try:
                    job = self._jobs.get(timeout=left)
                except queue.Empty:
                    return False
            if job is None:
                return True
            batch.append(job)
        return False

    def _run(self, batch: list[_Job]) -> None:
        try:
            results = self._classify([j.text for j in batch])
        except Exception:  # a failed batch answers "no intent", never raises
            log.exception("nlu.batch_failed", size=len(batch))
            results = [NluResult.empty(j.text) for j in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[NluResult], NluResult]]]
        by_loop = {}
        for job, res in zip(batch, results, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, res))
        for loop, answers in by_loop.items():  # one wake-up of each loop per batch
            with contextlib.suppress(RuntimeError):  # a loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, answers)

    def _classify(self, texts: list[str]) -> list[NluResult]:
        predictor = self.predictor  # once: a swap may replace it while this batch runs
        assert predictor is not None
        cfg = self.config
        cleaned = [clean(t, cfg.max_chars) for t in texts]
        live = [i for i, t in enumerate(cleaned) if t.strip()]
        out = [NluResult.empty(t) for t in texts]
        if not live:
            return out
        probs = predictor.forward(predictor.encode([cleaned[i] for i in live]))
        if self.record is not None:
            self.record.batches.append([cleaned[i] for i in live])
        top = probs.topk(min(cfg.top_k, probs.shape[-1]), dim=-1)
        values: list[list[float]] = top.values.tolist()
        indices: list[list[int]] = top.indices.tolist()
        labels = predictor.labels
        for row, i in enumerate(live):
            ranking = tuple(
                [
                    IntentScore(labels[k], round(p, 6))
                    for p, k in zip(values[row], indices[row], strict=True)
                ]
            )
            best = ranking[0]
            out[i] = NluResult(texts[i], best.intent, best.confidence, ranking)
        return out


def _resolve(answers: list[tuple[asyncio.Future[NluResult], NluResult]]) -> None:
    for future, result in answers:
        if not future.done():
            future.set_result(result)
