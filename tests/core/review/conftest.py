"""The reviewed examples file's tests write into a copy of the bot's flows."""

from tests.support.flows_copy import flows_copy

__all__ = ["flows_copy"]
