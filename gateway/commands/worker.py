"""`worker`: take events from the shared queue and answer them; no HTTP besides metrics."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import structlog
from aiohttp import web

from gateway.app import create_probe_app
from gateway.brain import load_brain
from gateway.commands._common import add_log_level, freeze_heap, run_loop, settings_from
from gateway.errors import StartupError
from gateway.privacy import install_retention
from gateway.services import Services, build_services

log = structlog.get_logger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "worker",
        help="answer queued events from the shared Redis queue (scale-out)",
        description=(
            "Run a queue consumer only: it takes events that `serve` processes queued in Redis, "
            "runs the bot and sends the replies. Run as many as the load needs; they share "
            "REDIS_URL. SIGTERM finishes the turns in flight and leaves the rest queued."
        ),
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="also serve /healthz, /readyz and /metrics on this port (127.0.0.1 unless --host)",
    )
    p.add_argument("--host", default=None, help="address for --metrics-port (HOST)")
    add_log_level(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, long_running=True, host=args.host)
    if settings.redis_url is None:
        raise StartupError(
            "worker needs a shared queue: set REDIS_URL (with the in-memory default, "
            "`python -m gateway serve` runs the worker itself)"
        )
    brain = load_brain(settings)
    services = build_services(settings, nlu=brain.nlu, dialogue=brain.dialogue, with_worker=True)
    brain.install(services, background=False)
    install_retention(services)
    run_loop(settings.event_loop, _run(services, args.metrics_port))
    return 0


async def _run(services: Services, metrics_port: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    await services.start()
    freeze_heap()
    try:
        if metrics_port:
            runner = web.AppRunner(create_probe_app(services), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, services.settings.host, metrics_port).start()
        log.info("worker.running")
        await stop.wait()
        log.info("worker.stopping")
    finally:
        if runner is not None:
            await runner.cleanup()
        await services.stop()
