"""Where the base model comes from: a local checkpoint, the model hub, or the hub's cache when
the hub cannot be reached (found out once, with one short attempt, instead of the hub client's
minutes of retries)."""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT = 3.0
"""Seconds the one look at the hub may take; a machine without network fails it at once."""

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class BaseModelSource:
    """How `from_pretrained` should load the base model; `local_only` keeps it to files on disk
    (a checkpoint directory or the hub's cache)."""

    name: str
    local_only: bool
    why: str


def _offline_by_setting() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


@functools.cache
def hub_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """(reachable, reason), asked once per process and endpoint. Any HTTP answer counts as
    reachable (the hub says 401/404 for names it does not serve; loading then reports it)."""
    req = urllib.request.Request(f"{endpoint}/api/models", method="HEAD")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout):  # noqa: S310 - the endpoint is ours
            return True, "answered"
    except urllib.error.HTTPError as exc:
        return True, f"answered {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(reason) or type(exc).__name__


def base_model_source(name: str) -> BaseModelSource:
    """A directory is loaded as it is; a hub name is fetched when the hub answers, otherwise
    taken from the hub's cache if it was downloaded before (one log line says which)."""
    if Path(name).expanduser().is_dir():
        return BaseModelSource(str(Path(name).expanduser()), True, "local checkpoint")
    if _offline_by_setting():
        return BaseModelSource(name, True, "HF_HUB_OFFLINE is set: the hub's cache only")
    endpoint = _endpoint()
    ok, reason = hub_reachable(endpoint)
    if ok:
        return BaseModelSource(name, False, f"model hub {endpoint} {reason}")
    # No line of its own: training says once what it fell back to, with this as the reason.
    return BaseModelSource(name, True, f"model hub unreachable ({reason}): the hub's cache only")
