"""One module per channel, each defining `CASE`: how the contract suite drives that channel."""

from __future__ import annotations

import importlib
import pkgutil

from tests.adapters.contract import ChannelCase


def load_cases() -> list[ChannelCase]:
    cases = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            cases.append(importlib.import_module(f"{__name__}.{info.name}").CASE)
    return cases
