"""`model`: which intent model is deployed, and a rollback to the one before."""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import ReleaseError, StartupError
from gateway.commands._common import add_log_level, settings_from
from gateway.model_release import announce_release, releases


def register(sub: Any) -> None:
    p = sub.add_parser("model", help="the deployed intent model: status, rollback")
    inner = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    s = inner.add_parser("status", help="the release served (MODEL_DIR) and the previous one")
    add_log_level(s)
    s.set_defaults(func=run_status)
    r = inner.add_parser(
        "rollback",
        help="serve the previous release again (every process picks it up)",
        description=(
            "Point MODEL_DIR back at the release deployed before the current one; the current "
            "one becomes the previous, so a second rollback undoes the first."
        ),
    )
    add_log_level(r)
    r.set_defaults(func=run_rollback)


def run_status(args: argparse.Namespace) -> int:
    rel = releases(settings_from(args))
    print(f"current: {rel.current() or 'none'}")
    print(f"previous: {rel.previous() or 'none'}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        served, aside = releases(settings).rollback()
    except ReleaseError as exc:
        raise StartupError(str(exc)) from None
    announce_release(settings, served)
    print(f"rolled back: {settings.model_dir} -> {served} (was {aside})")
    return 0
