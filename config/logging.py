"""Structured logs: JSON lines by default, readable on a terminal; personal data masked, secrets
never written."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# An address is found from its `@` outwards, never by trying a pattern at every position: a
# long run of letters without an `@` is then one `find`, not quadratic work. Both parts are
# Unicode-aware (`\w`): jöhn.döe@exämple.com is an address like any other.
_LOCAL = re.compile(r"[\w.%+-]+")
"""The local part, matched backwards from the `@` (on the reversed text)."""
_AT_DOMAIN = re.compile(r"@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
"""`@`, labels and a top-level domain of two letters or more."""
# International numbers (+ and 8-15 digits, spaces/dashes/dots/brackets between) and national
# ones written in groups, e.g. (415) 555-0123 or 020 7946 0958. Bare digit runs are left alone:
# they are mostly platform ids. Digits of any script (`\d`), and the full-width plus.
_PHONE = re.compile(
    r"(?<![\w+\uff0b])"
    r"(?:[+\uff0b]\d[\d\s().-]{6,18}\d|\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4})(?!\w)"
)
# Telegram bot tokens travel inside API URLs (https://api.telegram.org/bot<id>:<secret>/...).
_BOT_TOKEN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
_SECRET_KEYS = re.compile(r"secret|token|password|passwd|authorization|api_key|signature", re.I)
_KEEP_KEYS = frozenset({"event_id", "timestamp", "level", "logger", "entries", "reply"})


def mask_text(text: str) -> str:
    """Mask e-mail addresses (first letter and domain kept) and phone numbers (last two digits
    kept); remove bot tokens."""
    text = _BOT_TOKEN.sub("[redacted]", text)
    text = _mask_emails(text)
    return _PHONE.sub(_mask_phone, text)


def _mask_emails(text: str) -> str:
    """Each address as its first letter, `***@` and its domain. Linear in the text: a domain is
    read forwards from its `@` and a local part backwards, and neither part can hold an `@`, so
    every character is read at most twice."""
    if "@" not in text:
        return text
    backwards = text[::-1]
    size = len(text)
    out: list[str] = []
    copied = 0  # text before this is in `out`; a local part never reaches back past it
    for domain in _AT_DOMAIN.finditer(text):
        at = domain.start()
        local = _LOCAL.match(backwards, size - at)
        if local is None:
            continue
        start = max(at - len(local.group()), copied)
        if start == at:
            continue
        out += (text[copied:start], text[start], "***", domain.group())
        copied = domain.end()
    out.append(text[copied:])
    return "".join(out)


def _mask_phone(m: re.Match[str]) -> str:
    s = m.group(0)
    digits = sum(c.isdigit() for c in s)
    if digits < 7:
        return s
    lead = "+" if s[0] in "+\uff0b" else ""
    return f"{lead}***{''.join(c for c in s if c.isdigit())[-2:]}"


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _scrub(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def _scrub(key: str, value: Any) -> Any:
    if key in _KEEP_KEYS:
        return value
    if _SECRET_KEYS.search(key) and value not in (None, "", False):
        return "[redacted]"
    return _mask(value)


def scrub_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = _scrub(key, event[key])
    return event


class _Stderr:
    """Whatever `sys.stderr` is at the time of writing (it may be replaced after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", fmt: str = "auto", *, cache: bool = False) -> None:
    """Set up structlog (and the standard library's logging, so library warnings come out the
    same way). `cache`: module loggers keep their first configuration instead of rebuilding a
    bound logger on every call (a long-running process's hot paths; tests that swap the
    configuration, as `capture_logs` does, need it off)."""
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
