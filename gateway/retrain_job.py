"""A retrain started from the console: `python -m gateway train --json` in a child process at a
lower priority, one at a time, its progress read from the bar it prints and its end from the
gate's verdict. A child, not a thread: training sets the process's torch thread count and holds
the interpreter in long Python loops, and the process serving customers must not feel either."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import structlog

from config.settings import Settings
from core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

TRAIN = (sys.executable, "-m", "gateway", "train", "--json")
State = Literal["idle", "running", "deployed", "refused", "failed"]
_BAR = re.compile(r"^(?P<stage>[^\r\n]*?):\s+(?P<pct>\d{1,3})%\|")
"""A progress bar's line: `training intent model:  40%|████      | 120/300 [...]`."""
_TAIL = 8192
"""Bytes of the child's output kept to explain a failure."""


class Busy(Exception):
    """A retrain is already running (here or in another process on this machine)."""


@dataclass(slots=True)
class Status:
    """What the console shows: the stage and percentage while running, then the verdict."""

    state: State = "idle"
    by: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    stage: str = ""
    percent: int | None = None
    reasons: list[str] = field(default_factory=list)
    candidate_accuracy: float | None = None
    live_accuracy: float | None = None
    candidate: str | None = None

    def json(self) -> dict[str, Any]:
        out = asdict(self)
        end = self.finished_at or time.time()
        out["seconds"] = round(end - self.started_at, 1) if self.started_at else None
        return out


def child_env(settings: Settings) -> dict[str, str]:
    """The environment with what this process resolved (the command line and the config file
    may have set it), so the child trains the same flows into the same releases."""
    env = dict(os.environ)
    env.update(
        DATA_DIR=str(settings.data_dir.resolve()),
        MODEL_DIR=str(settings.model_dir.absolute()),
        FLOWS_DIR=str(settings.flows_dir.resolve()),
        BASE_MODEL=settings.base_model,
        NLU_THREADS=str(settings.nlu_threads),
        NLU_TRAIN_BF16=settings.nlu_train_bf16,
        GATE_MAX_INTENT_DROP=str(settings.gate_max_intent_drop),
        HF_HUB_OFFLINE="1" if settings.hf_hub_offline else "0",
        REDIS_PREFIX=settings.redis_prefix,
        LOG_FORMAT="json",
    )
    if settings.redis_url is not None:
        env["REDIS_URL"] = settings.redis_url.get_secret_value()
    return env


class Retrainer:
    """One process's retrain job. A second start while one runs raises `Busy`; so does a start
    while another process holds the lock file beside the releases (several `serve` processes
    on one machine share one button)."""

    def __init__(self, settings: Settings, command: Sequence[str] = TRAIN):
        self.settings = settings
        self.command = list(command)
        self.status = Status()
        self._task: asyncio.Task[None] | None = None
        self._lock: IO[str] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, by: str) -> Status:
        if self.running:
            raise Busy(f"a retrain started by {self.status.by} is running")
        self._take_lock()
        self.status = Status(state="running", by=by, started_at=time.time(), stage="starting")
        self._task = asyncio.create_task(self._run(), name="retrain")
        log.info("retrain.started", by=by)
        return self.status

    def _take_lock(self) -> None:
        path = lock_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise Busy("a retrain started from another process is running") from None
        self._lock = lock

    async def _run(self) -> None:
        try:
            await self._train()
        except Exception as exc:  # noqa: BLE001 - shown to the admin, the live model untouched
            self._end("failed", [f"the retrain could not run: {exc}"])
        finally:
            if self._lock is not None:
                self._lock.close()  # closing releases the lock
                self._lock = None

    async def _train(self) -> None:
        argv = self.command
        nice = shutil.which("nice")
        if nice:  # customers' turns first: the machine's cores are shared with serving
            argv = [nice, "-n", "10", *argv]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(self.settings),
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            out, err = await asyncio.gather(proc.stdout.read(), self._follow(proc.stderr))
            rc = await proc.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        self._finish(rc, out.decode(errors="replace"), err)

    async def _follow(self, stream: asyncio.StreamReader) -> str:
        """Reads the child's error stream: progress bars set the stage, log lines are passed
        on to this process's error stream; returns the last bytes, to explain a failure."""
        tail, pending = "", ""
        while chunk := await stream.read(4096):
            pending += chunk.decode(errors="replace")
            *parts, pending = re.split(r"[\r\n]", pending)
            for part in parts:
                self._line(part)
            tail = (tail + chunk.decode(errors="replace"))[-_TAIL:]
        self._line(pending)
        return tail

    def _line(self, text: str) -> None:
        bar = _BAR.match(text.strip())
        if bar:
            self.status.stage = bar["stage"].strip()[:80]
            self.status.percent = min(100, int(bar["pct"]))
        elif text.strip():
            print(text, file=sys.stderr)

    def _finish(self, rc: int, out: str, err: str) -> None:
        verdict = _last_json(out)
        if verdict is not None:
            self.status.candidate_accuracy = verdict.get("candidate_accuracy")
            self.status.live_accuracy = verdict.get("live_accuracy")
            self.status.candidate = verdict.get("candidate")
            state: State = "deployed" if verdict.get("deployed") else "refused"
            self._end(state, [str(r) for r in verdict.get("reasons", [])])
            return
        said = [ln[len("gateway: ") :] for ln in err.splitlines() if ln.startswith("gateway: ")]
        reason = said[-1] if said else f"training stopped (exit code {rc}): {_last_line(err)}"
        self._end("refused" if said else "failed", [reason])

    def _end(self, state: State, reasons: list[str]) -> None:
        self.status.state = state
        self.status.reasons = reasons
        self.status.finished_at = time.time()
        seconds = self.status.json()["seconds"]
        log.info("retrain.finished", state=state, reasons=reasons, seconds=seconds)

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


def _last_json(out: str) -> dict[str, Any] | None:
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def _last_line(text: str) -> str:
    lines = [ln for ln in re.split(r"[\r\n]", text) if ln.strip()]
    return lines[-1][-300:] if lines else "no output"


def lock_path(settings: Settings) -> Path:
    """Beside the releases, which every process retraining into them shares."""
    return settings.data_dir / "models" / ".retrain.lock"
