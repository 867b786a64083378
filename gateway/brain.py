"""Wires the product's intent model and flow runner into the engine's seams."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from core.turn import Dialogue, IntentParser
from gateway.errors import StartupError


@dataclass
class Brain:
    nlu: IntentParser
    dialogue: Dialogue


def load_brain(settings: Settings) -> Brain:
    raise StartupError("the intent model and flow runner are not wired yet")
