"""What the subcommands share: settings with command-line overrides, and logging."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar, get_args

from aiohttp import web

from config.logging import configure
from config.settings import Settings, load_settings
from core.errors import StartupError
from core.redact import mask
from gateway.listener import ConnectionLimit, GuardedSite

T = TypeVar("T")

_BIND_ERRORS = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})

LOG_LEVELS = get_args(Settings.model_fields["log_level"].annotation)
"""The levels `LOG_LEVEL` accepts, offered by every command's --log-level."""


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="overrides LOG_LEVEL")


def settings_from(
    args: argparse.Namespace, *, long_running: bool = False, **extra: Any
) -> Settings:
    """Settings with the command line's overrides, and logging set up; `long_running` (serve,
    worker) caches the module loggers, which the webhook hot path notices."""
    overrides = {k: v for k, v in extra.items() if v is not None}
    settings = load_settings(**overrides)
    level = getattr(args, "log_level", None) or settings.log_level
    configure(level, settings.log_format, mask=mask, cache=long_running)
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


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """EVENT_LOOP: uvloop (libuv: less CPU per webhook; `bench/ingress.py --loop` compares the
    two) or the standard library's."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def freeze_heap() -> None:
    """Everything loaded by start-up (modules, the model, the flows) lives as long as the
    process: moved out of the garbage collector's sight, it is no longer walked by every full
    collection while messages arrive."""
    gc.collect()
    gc.freeze()


async def _freeze_heap(_app: web.Application) -> None:
    freeze_heap()


def run_loop(kind: str, main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the EVENT_LOOP of the settings."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(kind)) as runner:
        return runner.run(main)


def run_web(
    app: web.Application,
    *,
    host: str,
    port: int,
    ready: str,
    loop: str,
    shutdown_timeout: float = 60.0,
    limit: ConnectionLimit | None = None,
) -> None:
    """Serve `app` on a new `loop` (EVENT_LOOP) until SIGINT or SIGTERM; `ready` is printed once
    the port is bound, and `limit` caps the connections (see `gateway.listener`). A port that is
    taken or not allowed is the user's to fix: one line saying so, not a traceback."""
    app.on_startup.append(_freeze_heap)  # after the parts started (cleanup_ctx runs first)
    try:
        run_loop(loop, _serve(app, host, port, ready, shutdown_timeout, limit))
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        raise StartupError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another port (--port or "
            "PORT) or stop what is using it"
        ) from None


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    ready: str,
    shutdown_timeout: float,
    limit: ConnectionLimit | None,
) -> None:
    """What `web.run_app` does, with the site of `gateway.listener` (run_app takes no site of
    ours). The stop runs inside this task, before the loop cancels what is left, so turns in
    flight finish and the queue spills as on any stop."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, limit).start()
        print(ready, flush=True)
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
