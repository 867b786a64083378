"""A gateway process for the multi-process tests and the e2e bench: the real services, queue,
engine and web app, built by `build_gateway` with the product's model and flows (`--brain real`)
or the test doubles (`--brain double`; `--brain person` hands off on "person", as the flows do),
plus a signed test channel `probe` (a `RecordingChannel`) whose sends are POSTed to a recorder
that stands in for a platform's API.

    python -m tests.core.redis.harness serve  [--worker] [--brain double|person|real]
    python -m tests.core.redis.harness worker [--brain double|person|real]

Environment: the gateway's own settings (REDIS_URL, PORT, REDIS_PREFIX, CLAIM_IDLE_MS,
MAX_ATTEMPTS, ...) and RECORD_URL (where sends go), TURN_DELAY (seconds the double dialogue
takes per turn), PROBE_SECRET (the webhook signing key).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from aiohttp import web

from adapters.webchat import WebChatChannel
from config.settings import Settings
from core.models import Capabilities
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.commands._common import new_event_loop, run_loop, settings_from
from gateway.services import Services
from gateway.storage import build_relay
from tests.support.doubles import EchoDialogue, KeywordNlu, RecordingChannel


def probe(secret: str, record_url: str | None) -> RecordingChannel:
    """The signed test channel whose sends go to the recorder (another process), kept nowhere
    here."""
    return RecordingChannel(
        "probe",
        capabilities=Capabilities(max_text=4000),
        secret=secret.encode(),
        keep=False,
        forward_to=record_url,
    )


def brain(kind: str, settings: Settings) -> dict[str, Any]:
    """Keywords for `build_gateway`: the product's model and flows, or the doubles. The real
    ones are imported only when asked for: they pull in torch, seconds of start-up the fault
    tests do not need."""
    if kind == "real":
        from gateway.model_and_flows import load_model_and_flows

        # Loaded before the port opens, as the measurements expect.
        loaded = load_model_and_flows(settings, progress=False)
        return {"model_and_flows": loaded, "model_in_background": False}
    if kind == "person":
        from tests.support.handoff import PersonDialogue

        return {"nlu": KeywordNlu(), "dialogue": PersonDialogue()}
    delay = float(os.environ.get("TURN_DELAY", "0"))
    return {"nlu": KeywordNlu(), "dialogue": EchoDialogue(delay=delay)}


async def run_worker(services: Services) -> None:
    """Like `gateway worker`: run until SIGTERM, then finish the turns in flight."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with services.running():
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.core.redis.harness")
    p.add_argument("role", choices=["serve", "worker"])
    p.add_argument("--worker", action="store_true", help="serve: run the engine in-process too")
    p.add_argument("--brain", choices=["double", "person", "real"], default="double")
    args = p.parse_args(argv)
    settings = settings_from(args)
    channels = {
        "probe": probe(
            os.environ.get("PROBE_SECRET", "probe-secret"), os.environ.get("RECORD_URL")
        ),
        "webchat": WebChatChannel(relay=build_relay(settings)),
    }
    with_worker = args.role == "worker" or args.worker
    services = build_gateway(
        settings,
        args.role,
        channels=channels,
        with_worker=with_worker,
        **brain(args.brain, settings),
    )
    if args.role == "worker":
        run_loop(settings.event_loop, run_worker(services))
        return 0
    print(f"harness: serving on {settings.port}", flush=True)
    web.run_app(
        create_app(services),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=5,
        access_log=None,
        print=None,
        loop=new_event_loop(settings.event_loop),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
