"""`json_object`: the webhook bodies every JSON adapter reads, on orjson's fast path and the
standard library's fallback, with the same answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.channel import WebhookRequest, json_object, strict_json
from core.errors import PayloadError


def test_an_object_is_read() -> None:
    assert json_object(b'{"a": [1, {"b": "\\u00e9"}]}') == {"a": [1, {"b": "é"}]}


def test_a_lone_surrogate_orjson_refuses_is_read_as_the_standard_library_reads_it() -> None:
    """The models turn it into U+FFFD later; refusing the whole body would lose the message."""
    assert json_object(b'{"t": "\\ud800"}') == {"t": "\ud800"}


def test_strict_json_writes_lone_surrogates_as_replacement_characters() -> None:
    """For the strict parsers (msgspec) that refuse such a body: the same data, valid Unicode."""
    assert (
        strict_json(b'{"t": "a\\ud800b", "\\udfff": [1]}')
        == '{"t": "a\ufffdb", "\ufffd": [1]}'.encode()
    )
    assert strict_json(b'{"t": "caf\\u00e9"}') == '{"t": "café"}'.encode()
    for body in (b"{not json", b'{"a": "\xff"}', b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(PayloadError, match="not UTF-8 JSON"):
            strict_json(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b'{"a": "\xff"}', "not UTF-8 JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
    ],
    ids=["empty", "broken", "not utf-8", "nested too deep", "array", "string"],
)
def test_anything_else_is_a_payload_error(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        json_object(body)


def test_header_lookup_ignores_case_of_the_name() -> None:
    req = WebhookRequest("POST", "http://h/x", {"x-token": "t"}, {}, b"")
    assert req.header("X-Token") == "t"
    assert req.header("X-Missing", "d") == "d"


def test_recent_conversations_and_senders_are_shared_instances() -> None:
    """Frozen, so one instance serves every event of a conversation; a lone surrogate is still
    replaced at the door, and a different thread or name is a different instance."""
    from core.models import ConversationRef, Sender, conversation_ref, sender_ref

    ref = conversation_ref("slack", "C1", "1.0")
    assert ref is conversation_ref("slack", "C1", "1.0")
    assert ref == ConversationRef(channel="slack", chat_id="C1", thread_id="1.0")
    assert conversation_ref("slack", "C1") is not ref
    assert conversation_ref("slack", "C1").thread_id is None
    assert sender_ref("U1") is sender_ref("U1")
    assert sender_ref("U1", "Ann") == Sender(id="U1", name="Ann")
    assert sender_ref("U\ud800").id == "U\ufffd"
    with pytest.raises(ValidationError):
        conversation_ref("slack", 5)  # type: ignore[arg-type]
