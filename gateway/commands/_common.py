"""What the subcommands share: settings with command-line overrides, and logging."""

from __future__ import annotations

import argparse
from typing import Any

from config.logging import configure
from config.settings import Settings, load_settings


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {k: v for k, v in extra.items() if v is not None}
    settings = load_settings(**overrides)
    configure(getattr(args, "log_level", None) or settings.log_level, settings.log_format)
    return settings
