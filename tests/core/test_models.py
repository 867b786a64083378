"""`Inbound.build`: the webhook hot path's construction gives what validation gives, and takes
validation's way for anything it cannot vouch for."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.models import Attachment, ConversationRef, Inbound, Sender, conversation_ref, sender_ref

CONV = conversation_ref("slack", "D1", "1700000000.000100")
USER = sender_ref("U1")
PICTURE = Attachment(kind="image", mime_type="image/png", url="https://files.example/p.png")

LEAST: dict[str, Any] = {
    "event_id": "D1:1",
    "conversation": CONV,
    "sender": USER,
    "text": "",
    "meta": {},
    "raw": None,
}
TRUSTED: dict[str, dict[str, Any]] = {
    "least": LEAST,
    "a Slack message": {
        "event_id": "D1:1700000000.000100",
        "conversation": CONV,
        "sender": USER,
        "text": "where is my order A1B2C3?",
        "meta": {"slack_event_id": "Ev1", "ts": "1700000000.000100"},
        "raw": '{"type": "event_callback"}',
        "message_id": "1700000000.000100",
    },
    "attachments and a raw object": {
        **LEAST,
        "attachments": (PICTURE, PICTURE),
        "raw": {"event": {"files": []}},
    },
}
VALIDATED: dict[str, dict[str, Any]] = {
    "text past ASCII": {**LEAST, "text": "café ☕"},
    "a lone surrogate": {**LEAST, "text": "hi \ud800"},
    "a lone surrogate in meta": {**LEAST, "meta": {"subject": "\udcff"}},
    "an id past ASCII": {**LEAST, "event_id": "é"},
    "a message id past ASCII": {**LEAST, "message_id": "é"},
    "a conversation as a mapping": {**LEAST, "conversation": {"channel": "x", "chat_id": "1"}},
    "a sender as a mapping": {**LEAST, "sender": {"id": "U2", "name": "Ann"}},
    "a text subclass": {**LEAST, "text": type("Text", (str,), {})("hi")},
    "attachments as a list": {**LEAST, "attachments": [PICTURE]},
    "attachments as mappings": {**LEAST, "attachments": ({"kind": "file", "name": "a"},)},
}
REFUSED: dict[str, dict[str, Any]] = {
    "an id that is a number": {**LEAST, "event_id": 7},
    "no text": {**LEAST, "text": None},
    "meta of None": {**LEAST, "meta": None},
    "meta with a number": {**LEAST, "meta": {"n": 1}},
    "meta with a key that is a number": {**LEAST, "meta": {1: "n"}},
    "attachments of strings": {**LEAST, "attachments": ("x",)},
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
        built = Inbound.build(**fields)
    same(built, validated)
    assert built.__getstate__().keys() == constructed.__getstate__().keys()
    assert built.meta is fields["meta"] and built.raw is fields["raw"]
    assert Inbound.model_validate_json(built.to_json()) == built
    with pytest.raises(ValidationError, match="frozen"):
        built.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("fields", list(VALIDATED.values()), ids=list(VALIDATED))
def test_fields_it_cannot_vouch_for_are_validated(
    fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    validated: list[Any] = []
    validate = Inbound.model_validate

    def spy(obj: Any) -> Inbound:
        validated.append(obj)
        return validate(obj)

    with monkeypatch.context() as m:
        m.setattr(Inbound, "model_validate", spy)
        built = Inbound.build(**fields)
    assert validated == [fields]
    same(built, Inbound.model_validate(fields))


def test_lone_surrogates_become_replacement_characters_on_the_validated_way() -> None:
    assert Inbound.build(**VALIDATED["a lone surrogate"]).text == "hi \ufffd"
    assert Inbound.build(**VALIDATED["a lone surrogate in meta"]).meta == {"subject": "\ufffd"}
    assert isinstance(Inbound.build(**VALIDATED["a sender as a mapping"]).sender, Sender)
    built = Inbound.build(**VALIDATED["a conversation as a mapping"])
    assert isinstance(built.conversation, ConversationRef)


@pytest.mark.parametrize("fields", list(REFUSED.values()), ids=list(REFUSED))
def test_what_validation_refuses_is_refused_alike(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as expected:
        Inbound.model_validate(fields)
    with pytest.raises(ValidationError) as got:
        Inbound.build(**fields)
    assert got.value.errors() == expected.value.errors()


def test_an_entry_queued_before_edits_existed_reads_as_a_message() -> None:
    """A queue or spill file written by the previous release has no `kind`: still a message."""
    old = (
        '{"event_id":"D1:1","conversation":{"channel":"slack","chat_id":"D1","thread_id":null},'
        '"sender":{"id":"U1","name":null},"text":"hi","attachments":[],"payload":null,'
        '"locale":null,"received_at":1.0,"meta":{},"raw":null}'
    )
    inbound = Inbound.model_validate_json(old)
    assert (inbound.kind, inbound.message_id, inbound.target_id) == ("message", None, None)
    edit = inbound.model_copy(update={"kind": "edit", "target_id": "1", "event_id": "D1:1:e"})
    again = Inbound.model_validate_json(edit.to_json())
    assert (again.kind, again.target_id) == ("edit", "1")


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        Inbound.model_validate({**LEAST, "kind": "reaction"})
