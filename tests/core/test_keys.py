"""Key names that keep who they are about out of sight."""

from __future__ import annotations

import re

from core.keys import hashed, hidden


def test_a_hashed_name_keeps_its_label_and_hides_the_rest() -> None:
    name = hashed("email:john.doe@example.com")
    assert re.fullmatch(r"email:[0-9a-f]{32}", name)
    assert hashed("email:john.doe@example.com") == name, "the same name for the same key"
    assert hashed("email:jane.doe@example.com") != name
    assert re.fullmatch(r"[0-9a-f]{32}", hashed("no-label"))
    assert hashed("x:\udcff") != hashed("x:")  # what a model would never hold still hashes


def test_hidden_hides_the_identifier_and_is_stable() -> None:
    assert hidden("jane@example.com") == hidden("jane@example.com")
    assert "jane" not in hidden("jane@example.com")
    assert hidden("jane@example.com") != hidden("john@example.com")
