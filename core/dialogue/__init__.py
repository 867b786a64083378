"""The dialogue: YAML flows loaded into checked, frozen objects and run one turn at a time."""

from core.dialogue.errors import ActionError, ActionRefused, FlowError, FlowIssue
from core.dialogue.loader import flow_files, load_bot
from core.dialogue.model import Bot, Flow, Policy
from core.dialogue.ports import Actions, HandoffRecord, HandoffTarget
from core.dialogue.runner import FlowRunner

__all__ = [
    "ActionError",
    "ActionRefused",
    "Actions",
    "Bot",
    "Flow",
    "FlowError",
    "FlowIssue",
    "FlowRunner",
    "HandoffRecord",
    "HandoffTarget",
    "Policy",
    "flow_files",
    "load_bot",
]
