"""`serve`: webhooks, web chat, health and metrics (and, by default, the worker too)."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.app import create_app
from gateway.brain import load_brain
from gateway.commands._common import add_log_level, run_web, settings_from
from gateway.listener import connection_limit
from gateway.privacy import install_retention
from gateway.services import build_services
from gateway.smtp_listener import install_smtp_listener


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the gateway: webhooks, web chat, /healthz, /readyz, /metrics",
        description=(
            "Run the gateway's HTTP server. Webhooks are answered as soon as their event is "
            "queued; the worker that answers them runs in this process unless REDIS_URL is set "
            "(then run `python -m gateway worker` processes beside it) or --no-worker is given."
        ),
    )
    p.add_argument("--host", help="address to listen on (HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (PORT, default 8080)")
    p.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the worker in this process (default: yes in memory, no with Redis)",
    )
    add_log_level(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, long_running=True, host=args.host, port=args.port)
    brain = load_brain(settings)
    services = build_services(
        settings, nlu=brain.nlu, dialogue=brain.dialogue, with_worker=args.worker
    )
    brain.install(services, background=True)
    install_smtp_listener(services)
    install_retention(services)
    run_web(
        create_app(services),
        host=settings.host,
        port=settings.port,
        ready=f"gateway: listening on http://{settings.host}:{settings.port} (web chat at /chat)",
        shutdown_timeout=settings.shutdown_timeout,
        loop=settings.event_loop,
        limit=connection_limit(settings),
    )
    return 0
