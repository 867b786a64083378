"""Wires the product's intent model and flow runner into the engine's seams."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from core.nlu.parser import ModelParser
from core.turn import Dialogue
from gateway.dialogue_loader import DialogueBundle, load_dialogue
from gateway.nlu_loader import ensure_model, serve_config, start_in_background
from gateway.services import Services


@dataclass
class Brain:
    nlu: ModelParser
    dialogue: Dialogue
    flows: DialogueBundle

    async def start(self, *, background: bool) -> None:
        """With `background`, the weights load on a thread while the server answers (`/readyz`
        red until loaded); messages that arrive meanwhile wait for the model."""
        if background:
            await start_in_background(self.nlu)
        else:
            await self.nlu.start()
        await self.flows.start()

    async def stop(self) -> None:
        await self.flows.stop()
        await self.nlu.close()

    def install(self, services: Services, *, background: bool) -> None:
        """Start with the services (before the worker takes anything) and stop after it."""

        async def start() -> None:
            await self.start(background=background)

        services.on_start.append(start)
        services.on_stop.append(self.stop)


def load_brain(settings: Settings, *, progress: bool = True) -> Brain:
    """Flows first (a mistake stops the start with file:line, before any training), then the
    intent model: trained with a progress bar when missing or when the intents changed."""
    flows = load_dialogue(settings)
    ensure_model(settings, progress=progress)
    parser = ModelParser(
        settings.model_dir, serve_config(settings), extract=flows.extractor.extract
    )
    if settings.confidence_threshold is None:
        flows.dialogue.use_threshold(lambda: parser.threshold)
    flows.dialogue.use_parser(parser.parse)
    return Brain(nlu=parser, dialogue=flows.dialogue, flows=flows)
