"""What the subcommands share: settings with command-line overrides, and logging."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from config.logging import configure
from config.settings import Settings, load_settings

LOG_LEVELS = get_args(Settings.model_fields["log_level"].annotation)
"""The levels `LOG_LEVEL` accepts, offered by every command's --log-level."""


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="overrides LOG_LEVEL")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {k: v for k, v in extra.items() if v is not None}
    settings = load_settings(**overrides)
    configure(getattr(args, "log_level", None) or settings.log_level, settings.log_format)
    return settings
