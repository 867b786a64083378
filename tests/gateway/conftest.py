"""The gateway's tests drive pages in Chromium and answer on a recording channel."""

from tests.support.browser import browser
from tests.support.doubles import recording_channel

__all__ = ["browser", "recording_channel"]
