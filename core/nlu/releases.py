"""Model releases: each trained model in a directory of its own, the one served named by a
pointer that is switched atomically, the one before it kept for a rollback.

    <models>/20261206T201500Z/     a model directory (see `core.nlu.artifacts`)
    <models>/previous              symlink: the release before the current one
    MODEL_DIR                      symlink: the release every process serves

A symlink is replaced by `rename(2)` of a new link over it, which is atomic: a process looking
at the pointer sees the old release or the new one, never none. Processes read the pointer once
and load the directory it resolves to, so a deployment during a load cannot mix two models."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import ReleaseError

PREVIOUS = "previous"


@dataclass(frozen=True, slots=True)
class Releases:
    """The release directories under `root` and the `pointer` (MODEL_DIR) processes serve.
    Used by `gateway train` (deploy), `gateway model rollback` and the processes' watchers."""

    root: Path
    pointer: Path

    def new_dir(self) -> Path:
        """A fresh, not yet existing directory for a candidate (UTC time, unique)."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out, n = self.root / stamp, 1
        while out.exists():
            n += 1
            out = self.root / f"{stamp}-{n}"
        return out

    def current(self) -> Path | None:
        """The directory served now (the pointer resolved), None when there is no model."""
        return self.pointer.resolve() if self.pointer.exists() else None

    def previous(self) -> Path | None:
        link = self.root / PREVIOUS
        return link.resolve() if link.exists() else None

    def deploy(self, release: Path) -> Path | None:
        """Point MODEL_DIR at `release`; the release it pointed at becomes `previous`. Returns
        that previous one. A MODEL_DIR that is a plain directory (trained before releases) is
        first moved in among the releases, so it can be rolled back to."""
        old = self._adopt()
        _point(self.pointer, release.resolve())
        if old is not None and old != release.resolve():
            _point(self.root / PREVIOUS, old)
        return old

    def rollback(self) -> tuple[Path, Path]:
        """Serve `previous` again; the release it replaces becomes `previous` (so a rollback
        can be undone the same way). Returns (now served, set aside)."""
        prev, cur = self.previous(), self.current()
        if prev is None or not prev.is_dir():
            raise ReleaseError(f"{self.root / PREVIOUS}: no previous release to roll back to")
        if cur is None:
            raise ReleaseError(f"{self.pointer}: no model is deployed")
        _point(self.pointer, prev)
        _point(self.root / PREVIOUS, cur)
        return prev, cur

    def _adopt(self) -> Path | None:
        if self.pointer.is_symlink():
            return self.current()
        if not self.pointer.exists():
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        moved = self.root / f"{self.new_dir().name}-adopted"
        os.rename(self.pointer, moved)
        return moved


def _point(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)
