"""What the subcommands share: settings with command-line overrides, and logging."""

from __future__ import annotations

import argparse
import errno
from typing import Any, get_args

from aiohttp import web

from config.logging import configure
from config.settings import Settings, load_settings
from gateway.errors import StartupError

_BIND_ERRORS = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})

LOG_LEVELS = get_args(Settings.model_fields["log_level"].annotation)
"""The levels `LOG_LEVEL` accepts, offered by every command's --log-level."""


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="overrides LOG_LEVEL")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {k: v for k, v in extra.items() if v is not None}
    settings = load_settings(**overrides)
    configure(getattr(args, "log_level", None) or settings.log_level, settings.log_format)
    return settings


def port_number(value: str) -> int:
    """An argparse type: a TCP port, refused with the usage line when out of range."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (got {n})")
    return n


def run_web(app: web.Application, *, host: str, port: int, ready: str, **kw: Any) -> None:
    """Serve `app` until a signal; `ready` is printed once the port is bound. A port that is
    taken or not allowed is the user's to fix: one line saying so, not a traceback."""
    try:
        web.run_app(
            app,
            host=host,
            port=port,
            access_log=None,
            print=lambda _: print(ready, flush=True),
            **kw,
        )
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        raise StartupError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another port (--port or "
            "PORT) or stop what is using it"
        ) from None
