"""The intent model at start-up: train it when it is missing or no longer fits the flows, check
it, and hand the engine a parser that loads its weights without blocking the server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from config.settings import Settings
from core.errors import ModelDirError, NluDataError, StartupError
from core.nlu import artifacts
from core.nlu.config import TrainConfig
from core.nlu.data import load_data
from core.nlu.parser import Extract, ModelParser, ServeConfig
from core.nlu.train import TrainResult, fingerprint, matches, train

log = structlog.get_logger(__name__)

SWITCH = {"on": True, "off": False}
"""An on/off/auto setting as the model code takes it (auto: None, decided there)."""


def train_config(settings: Settings) -> TrainConfig:
    hub = None if settings.hf_hub_offline else settings.hf_endpoint
    return TrainConfig(
        base_model=settings.base_model,
        hub=hub,
        threads=settings.nlu_threads,
        bf16=SWITCH.get(settings.nlu_train_bf16),
    )


def serve_config(settings: Settings) -> ServeConfig:
    return ServeConfig(
        threads=settings.nlu_threads,
        quantize=SWITCH.get(settings.nlu_quantize),
        wait_ms=settings.nlu_batch_wait_ms,
        max_batch=settings.nlu_max_batch,
        max_chars=settings.nlu_max_chars,
    )


def train_now(
    settings: Settings,
    *,
    data: Path | None = None,
    out: Path | None = None,
    progress: bool = True,
    config: TrainConfig | None = None,
) -> TrainResult:
    source = data or settings.flows_dir
    try:
        examples = load_data(source)
        return train(
            examples, out or settings.model_dir, config or train_config(settings), progress=progress
        )
    except NluDataError as exc:
        raise StartupError(str(exc)) from None


def ensure_model(
    settings: Settings, *, progress: bool = True, config: TrainConfig | None = None
) -> artifacts.Checked:
    """Trains when the model directory is missing or its fingerprint (data digest, base model,
    format) does not match the flows; a directory that is there but broken is refused."""
    model_dir = settings.model_dir
    config = config or train_config(settings)
    try:
        examples = load_data(settings.flows_dir)
        saved = artifacts.read_fingerprint(model_dir)
        wanted = fingerprint(examples, config)
        if saved is None or not matches(saved, wanted):
            why = "missing" if saved is None else "stale (the intents or base model changed)"
            log.warning("nlu.training", model_dir=str(model_dir), reason=why)
            train(examples, model_dir, config, progress=progress)
        return artifacts.check(model_dir)
    except (NluDataError, ModelDirError) as exc:
        raise StartupError(f"intent model: {exc}") from None


def load_nlu(
    settings: Settings,
    *,
    extract: Extract | None = None,
    progress: bool = True,
    background: bool = False,
    config: TrainConfig | None = None,
) -> tuple[ModelParser, float]:
    """(parser, confidence threshold). The threshold is CONFIDENCE_THRESHOLD when set, else
    the one chosen on validation data at training. With `background=False` the parser is
    loaded on return; with `background=True` only checked, and `start_in_background(parser)`
    (the start of the "intent model" part in `serve`) loads the weights while `/readyz` answers
    503. `config` overrides the training settings (tests train a tiny model)."""
    checked = ensure_model(settings, progress=progress, config=config)
    parser = ModelParser(settings.model_dir, serve_config(settings), extract=extract)
    if not background:
        try:
            parser.load()
        except ModelDirError as exc:
            raise StartupError(f"intent model: {exc}") from None
    threshold = settings.confidence_threshold
    return parser, checked.threshold if threshold is None else threshold


async def start_in_background(parser: ModelParser) -> None:
    """Returns at once; the model loads on a thread. A failure is logged with path and reason
    and leaves `/readyz` red (the directory was checked before, so this is rare)."""

    async def load() -> None:
        try:
            await parser.start()
        except Exception as exc:  # noqa: BLE001 - reported, and readiness stays red
            log.error("nlu.load_failed", model_dir=str(parser.model_dir), reason=str(exc))

    task = asyncio.create_task(load(), name="nlu-load")
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


_TASKS: set[asyncio.Task[None]] = set()
