"""A retrain as a release: train a candidate into a directory of its own, put it through the gate
against the live model on the held-out split, and deploy it (switch MODEL_DIR, announce it) only
when it passes. Used by `gateway train`; `gateway model rollback` undoes a deployment."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from config.settings import Settings
from core.errors import StartupError
from core.nlu import artifacts, scores
from core.nlu.config import TrainConfig
from core.nlu.data import Example, NluDataError, load_data
from core.nlu.gate import Evaluation, Verdict, evaluate, judge
from core.nlu.parser import ModelParser
from core.nlu.releases import Releases
from core.nlu.train import TrainResult
from core.nlu.watch import ModelWatcher, announce
from gateway.nlu_loader import train_now
from gateway.storage import build_relay

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Outcome:
    """A candidate and what became of it."""

    candidate: Path
    trained: TrainResult
    verdict: Verdict
    deployed: bool


def verdict_json(outcome: Outcome) -> dict[str, Any]:
    """The outcome as `gateway train --json` prints it for the console."""
    v, t = outcome.verdict, outcome.trained
    return {
        "deployed": outcome.deployed,
        "candidate": str(outcome.candidate),
        "reasons": v.reasons,
        "candidate_accuracy": v.candidate.accuracy,
        "live_accuracy": v.live.accuracy if v.live is not None else None,
        "heldout_examples": v.candidate.n,
        "train_seconds": t.seconds,
    }


def releases(settings: Settings) -> Releases:
    return Releases(root=settings.data_dir / "models", pointer=settings.model_dir)


def heldout(settings: Settings) -> Path:
    return settings.flows_dir / "heldout"


def retrain(
    settings: Settings,
    *,
    data: Path | None = None,
    config: TrainConfig | None = None,
    progress: bool = True,
) -> Outcome:
    """Broken training or held-out data is refused (`StartupError` with file:line) before
    anything is trained; the live model is never touched unless the candidate passes."""
    try:
        examples = load_data(heldout(settings))
    except NluDataError as exc:
        raise StartupError(f"held-out data: {exc}") from None
    rel = releases(settings)
    out = rel.new_dir()
    trained = train_now(settings, data=data, out=out, progress=progress, config=config)
    try:
        candidate = evaluate(out, examples)
    except artifacts.ModelDirError as exc:
        failed = Verdict(False, Evaluation(0.0, {}, 0), None, [f"candidate failed to load: {exc}"])
        return Outcome(out, trained, failed, deployed=False)
    scores.write(out, candidate)
    verdict = judge(candidate, _live(rel, examples), settings.gate_max_intent_drop)
    if verdict.deploy:
        before = rel.deploy(out)
        log.info("nlu.deployed", release=str(out), previous=str(before))
        announce_release(settings, out)
    else:
        log.warning("nlu.candidate_refused", release=str(out), reasons=verdict.reasons)
    return Outcome(out, trained, verdict, verdict.deploy)


def _live(rel: Releases, examples: list[Example]) -> Evaluation | None:
    """The live model's figures; one that cannot be loaded counts as none (said in the log)."""
    current = rel.current()
    if current is None:
        return None
    try:
        return evaluate(current, examples)
    except artifacts.ModelDirError as exc:
        log.warning("nlu.live_model_unusable", model_dir=str(current), reason=str(exc))
        return None


def announce_release(settings: Settings, release: Path) -> None:
    """At scale every process hears it at once; alone, each finds it at its next look."""
    relay = build_relay(settings)
    if relay is None:
        return

    async def publish() -> None:
        try:
            await announce(relay, release)
        finally:
            await relay.close()

    try:
        asyncio.run(publish())
    except Exception as exc:  # noqa: BLE001 - processes still find it by looking
        log.warning("nlu.announce_failed", error=repr(exc))


def model_watcher(settings: Settings, parser: ModelParser) -> ModelWatcher:
    """What keeps a `serve` or `worker` process on the deployed model (an async context
    manager: enter it once the parser is built, leave it before the parser closes)."""
    return ModelWatcher(parser, interval=settings.model_watch_interval, relay=build_relay(settings))
