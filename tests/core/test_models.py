"""`Inbound.from_fields`: the webhook hot path's construction gives what validation gives, and
takes validation's way for anything it cannot vouch for."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.models import Attachment, ConversationRef, Inbound, Sender, conversation_ref, sender_ref

CONV = conversation_ref("slack", "D1", "1700000000.000100")
USER = sender_ref("U1")
PICTURE = Attachment(kind="image", mime_type="image/png", url="https://files.example/p.png")

TRUSTED: dict[str, dict[str, Any]] = {
    "least": {"event_id": "D1:1", "conversation": CONV, "sender": USER},
    "a Slack message": {
        "event_id": "D1:1700000000.000100",
        "conversation": CONV,
        "sender": USER,
        "text": "where is my order A1B2C3?",
        "meta": {"slack_event_id": "Ev1", "ts": "1700000000.000100"},
        "raw": '{"type": "event_callback"}',
    },
    "attachments and a raw object": {
        "event_id": "D1:2",
        "conversation": CONV,
        "sender": USER,
        "attachments": (PICTURE,),
        "raw": {"event": {"files": []}},
        "meta": {},
    },
}
VALIDATED: dict[str, dict[str, Any]] = {
    "text past ASCII": {**TRUSTED["least"], "text": "café ☕"},
    "a lone surrogate": {**TRUSTED["least"], "text": "hi \ud800"},
    "a lone surrogate in meta": {**TRUSTED["least"], "meta": {"subject": "\udcff"}},
    "an id past ASCII": {**TRUSTED["least"], "event_id": "é"},
    "a button's payload": {**TRUSTED["least"], "payload": "yes", "locale": "en"},
    "a conversation as a mapping": {
        **TRUSTED["least"],
        "conversation": {"channel": "x", "chat_id": "1"},
    },
    "a sender as a mapping": {**TRUSTED["least"], "sender": {"id": "U2", "name": "Ann"}},
    "a text subclass": {**TRUSTED["least"], "text": type("Text", (str,), {})("hi")},
    "attachments as a list": {**TRUSTED["least"], "attachments": [PICTURE]},
}
REFUSED: dict[str, dict[str, Any]] = {
    "an id that is a number": {**TRUSTED["least"], "event_id": 7},
    "no sender": {"event_id": "x", "conversation": CONV},
    "an unknown field": {**TRUSTED["least"], "colour": "blue"},
    "meta of None": {**TRUSTED["least"], "meta": None},
    "meta with a number": {**TRUSTED["least"], "meta": {"n": 1}},
    "attachments of strings": {**TRUSTED["least"], "attachments": ("x",)},
}


def same(built: Inbound, validated: Inbound) -> None:
    assert type(built) is Inbound
    assert built == validated.model_copy(update={"received_at": built.received_at})
    assert built.model_fields_set == validated.model_fields_set
    assert built.__getstate__().keys() == validated.__getstate__().keys()
    assert built.__pydantic_extra__ == validated.__pydantic_extra__
    assert built.__pydantic_private__ == validated.__pydantic_private__
    assert [type(v) for v in vars(built).values()] == [type(v) for v in vars(validated).values()]


@pytest.mark.parametrize("fields", list(TRUSTED.values()), ids=list(TRUSTED))
def test_trusted_fields_build_the_instance_validation_would_without_validating(
    fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = Inbound.model_validate(fields)
    constructed = Inbound.model_construct(**fields)
    with monkeypatch.context() as m:
        m.setattr(Inbound, "model_validate", None)  # a call to it would fail
        built = Inbound.from_fields(fields)
    same(built, validated)
    assert built.__getstate__().keys() == constructed.__getstate__().keys()
    assert built.meta == fields.get("meta", {}) and built.meta is not fields.get("meta")
    assert built.raw is fields.get("raw")
    assert Inbound.model_validate_json(built.to_json()) == built
    with pytest.raises(ValidationError, match="frozen"):
        built.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("fields", list(VALIDATED.values()), ids=list(VALIDATED))
def test_fields_it_cannot_vouch_for_are_validated(fields: dict[str, Any]) -> None:
    same(Inbound.from_fields(fields), Inbound.model_validate(fields))


def test_lone_surrogates_become_replacement_characters_on_the_validated_way() -> None:
    built = Inbound.from_fields(VALIDATED["a lone surrogate"])
    assert built.text == "hi \ufffd"
    assert Inbound.from_fields(VALIDATED["a lone surrogate in meta"]).meta == {"subject": "\ufffd"}
    assert isinstance(Inbound.from_fields(VALIDATED["a sender as a mapping"]).sender, Sender)
    assert isinstance(
        Inbound.from_fields(VALIDATED["a conversation as a mapping"]).conversation,
        ConversationRef,
    )


@pytest.mark.parametrize("fields", list(REFUSED.values()), ids=list(REFUSED))
def test_what_validation_refuses_is_refused_alike(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as expected:
        Inbound.model_validate(fields)
    with pytest.raises(ValidationError) as got:
        Inbound.from_fields(fields)
    assert got.value.errors() == expected.value.errors()
