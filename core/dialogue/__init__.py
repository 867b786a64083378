"""The dialogue: YAML flows loaded into checked, frozen objects and run one turn at a time."""

from core.dialogue.loader import flow_files, load_bot
from core.dialogue.model import Bot, Flow, Policy
from core.dialogue.runner import FlowRunner

__all__ = ["Bot", "Flow", "FlowRunner", "Policy", "flow_files", "load_bot"]
