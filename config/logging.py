"""Structured logs: JSON lines by default, readable on a terminal; personal data masked, secrets
never written."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"secret|token|password|passwd|authorization|api_key|signature", re.I)
_KEEP_KEYS = frozenset({"event_id", "timestamp", "level", "logger", "entries", "reply"})


Mask = Callable[[str], str]
"""Personal data out of one string value; the gateway passes `core.redact.mask`."""


class Scrubber:
    """A structlog processor: secrets (by key) replaced, every other string value, nested ones
    too, through `mask`."""

    def __init__(self, mask: Mask):
        self._mask_text = mask

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event):
            event[key] = self._scrub(key, event[key])
        return event

    def _scrub(self, key: str, value: Any) -> Any:
        if key in _KEEP_KEYS:
            return value
        if _SECRET_KEYS.search(key) and value not in (None, "", False):
            return "[redacted]"
        return self._mask(value)

    def _mask(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._mask_text(value)
        if isinstance(value, Mapping):
            return {k: self._scrub(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask(v) for v in value]
        return value


class _Stderr:
    """Whatever `sys.stderr` is at the time of writing (it may be replaced after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", fmt: str = "auto", *, mask: Mask, cache: bool = False) -> None:
    """Set up structlog (and the standard library's logging, so library warnings come out the
    same way). `mask` takes personal data out of every string value: the redaction lives in
    `core.redact`, which `config` may not import, so the gateway hands it in (a required
    argument: no set-up writes unmasked logs by forgetting it). `cache`: module loggers keep
    their first configuration instead of rebuilding a bound logger on every call (a
    long-running process's hot paths; tests that swap the configuration, as `capture_logs`
    does, need it off)."""
    scrub_processor = Scrubber(mask)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    # In JSON the traceback becomes the `exception` text before scrubbing, so an address or a
    # bot token inside an exception's message is masked like any other value.
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info
        if use_json
        else structlog.processors.StackInfoRenderer(),
        scrub_processor,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                scrub_processor,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if level == "debug" else logging.getLevelName(level.upper()))
