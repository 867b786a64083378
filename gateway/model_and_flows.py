"""The product's intent model and flow runner, loaded from the settings, for the engine's seams
(`IntentParser`, `Dialogue`); how each is built is in `nlu_loader` and `dialogue_loader`."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from core.nlu.parser import ModelParser
from core.ports import Dialogue
from gateway.dialogue_loader import DialogueBundle, load_dialogue
from gateway.lifecycle import Part
from gateway.nlu_loader import ensure_model, serve_config, start_in_background
from integrations.shop import Shop


@dataclass
class ModelAndFlows:
    """The intent model (`nlu`) and the flows (`dialogue`, with their reload hooks in `flows`),
    started and stopped as two parts of the process."""

    nlu: ModelParser
    dialogue: Dialogue
    flows: DialogueBundle

    def parts(self, *, background: bool) -> list[Part]:
        """The model, then the flows (stopped in reverse). With `background`, the weights load
        on a thread while the server answers (`/readyz` red until loaded); messages that arrive
        meanwhile wait for the model."""

        async def start_model() -> None:
            if background:
                await start_in_background(self.nlu)
            else:
                await self.nlu.start()

        return [
            Part.hooks("intent model", start_model, self.nlu.close),
            Part.hooks("flows", self.flows.start, self.flows.stop),
        ]


def load_model_and_flows(
    settings: Settings, *, progress: bool = True, shop: Shop | None = None
) -> ModelAndFlows:
    """Flows first (a mistake stops the start with file:line, before any training), then the
    intent model: trained with a progress bar when missing or when the intents changed.
    `shop`: the in-process demo shop the flows call (None: a new one)."""
    flows = load_dialogue(settings, shop=shop)
    ensure_model(settings, progress=progress)
    parser = ModelParser(
        settings.model_dir, serve_config(settings), extract=flows.extractor.extract
    )
    if settings.confidence_threshold is None:
        flows.dialogue.use_threshold(lambda: parser.threshold)
    flows.dialogue.use_parser(parser.parse)
    return ModelAndFlows(nlu=parser, dialogue=flows.dialogue, flows=flows)
