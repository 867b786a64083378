"""`flows check [DIR]`: load the flows as the server would and print every mistake as
file:line: reason."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.dialogue import load_bot
from core.errors import FlowError
from gateway.commands._common import add_log_level, settings_from
from gateway.dialogue_loader import build_registry


def register(sub: Any) -> None:
    p = sub.add_parser(
        "flows",
        help="check the YAML flows (flows check [DIR])",
        description="Work with the bot's YAML flows.",
    )
    actions = p.add_subparsers(dest="flows_command", required=True)
    check = actions.add_parser(
        "check",
        help="load and validate the flows; print file:line: reason per mistake",
        description=(
            "Load the flows in DIR (default: FLOWS_DIR) exactly as the gateway does at start-up "
            "and print each mistake as file:line: reason. Exit status 1 when there is any."
        ),
    )
    check.add_argument("dir", nargs="?", type=Path, help="flows directory (default FLOWS_DIR)")
    add_log_level(check)
    check.set_defaults(func=run_check, log_level="warning")


def run_check(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    directory = args.dir or settings.flows_dir
    registry = build_registry(settings)
    try:
        bot = load_bot(directory, registry.names())
    except FlowError as exc:
        for issue in exc.issues:
            print(issue)
        print(f"{len(exc.issues)} mistake(s) in {directory}")
        return 1
    print(
        f"{directory}: OK ({len(bot.flows)} flows, {len(bot.intents)} intents, "
        f"{len(bot.files)} files)"
    )
    return 0
