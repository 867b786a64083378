"""A way out told apart from an answer that only reads like one."""

from __future__ import annotations

from core.dialogue.escape import stops


def test_stop_directives_are_stops() -> None:
    for text in (
        "nah forget it",
        "forget about it",
        "never mind",
        "nevermind, all good",
        "nvm",
        "stop",
        "no, cancel",
        "ok just stop please",
        "don't bother",
    ):
        assert stops(text), text


def test_reasons_that_read_like_cancel_are_not_stops() -> None:
    for text in (
        "changed my mind",
        "i don't want it anymore",
        "it stopped working after a day",
        "the zip broke",
        "wrong size, and the colour is not what i ordered",
        "i wanted to cancel but it had shipped",
    ):
        assert not stops(text), text
