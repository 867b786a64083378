"""`python -m gateway`: one entry point, a subcommand per job. Each module in
`gateway/commands/` adds its own subcommand."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from config.settings import SettingsError
from core.errors import StartupError
from gateway import commands

DESCRIPTION = """\
One bot, every channel: Slack, Telegram, WhatsApp (Twilio), e-mail and a web chat, answered by
one intent model and one set of YAML flows.

Settings come from config/gateway.yaml (or the file GATEWAY_CONFIG names) and the environment;
README.md lists every one."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (SettingsError, StartupError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
