"""The integrations' tests post handoffs to the fake helpdesk."""

from tests.support.fakes.helpdesk import helpdesk

__all__ = ["helpdesk"]
