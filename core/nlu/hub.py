"""Where the base model comes from: a local checkpoint, the model hub, or the hub's cache when
the hub cannot be reached (found out once, with one short attempt, instead of the hub client's
minutes of retries)."""

from __future__ import annotations

import functools
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]
"""What is downloaded of a hub repository: config, weights in safetensors, tokenizer files (not
the TensorFlow, Flax, Rust or ONNX copies many repositories also carry)."""

PROBE_TIMEOUT = 3.0
"""Seconds the one look at the hub may take; a machine without network fails it at once."""


@dataclass(frozen=True, slots=True)
class BaseModelSource:
    """How `from_pretrained` should load the base model; `local_only` keeps it to files on disk
    (a checkpoint directory or the hub's cache)."""

    name: str
    local_only: bool
    why: str


@functools.cache
def hub_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """(reachable, reason), asked once per process and endpoint. Any HTTP answer counts as
    reachable (the hub says 401/404 for names it does not serve; loading then reports it)."""
    req = urllib.request.Request(f"{endpoint.rstrip('/')}/api/models", method="HEAD")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout):  # noqa: S310 - the endpoint is ours
            return True, "answered"
    except urllib.error.HTTPError as exc:
        return True, f"answered {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(reason) or type(exc).__name__


def base_model_source(name: str, hub: str | None) -> BaseModelSource:
    """A directory is loaded as it is; a hub name is fetched from `hub` (an endpoint URL) when it
    answers, otherwise taken from the hub's cache if it was downloaded before. `hub=None` means
    offline: the cache only, the hub never asked."""
    if Path(name).expanduser().is_dir():
        return BaseModelSource(str(Path(name).expanduser()), True, "local checkpoint")
    if hub is None:
        return BaseModelSource(name, True, "offline (HF_HUB_OFFLINE): the hub's cache only")
    ok, reason = hub_reachable(hub)
    if ok:
        return BaseModelSource(name, False, f"model hub {hub} {reason}")
    # No line of its own: training says once what it fell back to, with this as the reason.
    return BaseModelSource(name, True, f"model hub unreachable ({reason}): the hub's cache only")


def fetch(source: BaseModelSource, hub: str | None) -> str:
    """What `from_pretrained(..., local_files_only=True)` should be given: the source as it is
    when it is kept to disk, else the directory the hub's repository was downloaded to (once:
    into the hub's cache, from `hub`'s resolve URLs, which the hub client cannot be told
    otherwise than through the environment). Raises what the hub client raises."""
    if source.local_only or hub is None:
        return source.name
    from huggingface_hub import snapshot_download

    return str(snapshot_download(source.name, endpoint=hub, allow_patterns=FILES))
