"""The contract suite: every channel case in `cases/` runs every test here (see README.md)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.channel import WebhookReply
from core.errors import PayloadError
from core.models import Button, ConversationRef, Outbound
from tests.adapters.cases import load_cases
from tests.adapters.contract import (
    FIXTURES,
    SENTINEL,
    ChannelCase,
    Gateway,
    Golden,
    Request,
    Sent,
    build_channel,
    build_settings,
    check_golden,
    running_gateway,
    sentinel,
    wait_sent,
    webhook_request,
)
from tests.adapters.ways import Link, ways_of
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.fakes import FakePlatform

CASES = load_cases()
GOLDENS = [(c, g) for c in CASES for g in c.goldens()]
NOT_PAYLOADS = frozenset({"README.md", "expect.json"})
"""Files of `tests/fixtures/<channel>/` that are not recorded payloads."""


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request: pytest.FixtureRequest) -> ChannelCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def fake(case: ChannelCase) -> AsyncIterator[FakePlatform]:
    async with case.fake() as f:
        yield f


@pytest.fixture
async def gateway(case: ChannelCase, fake: FakePlatform, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = build_settings(case, fake, tmp_path)
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        yield gw


async def test_bad_signature_refused(case: ChannelCase, fake: FakePlatform, gateway: Gateway):
    req = case.forge(case.message("hello", chat=case.chat, event="forged-1"))
    status, _ = await gateway.post(case, req)
    assert status == 401
    # Refused before the answer: nothing queued, so nothing can be sent; and a valid message in
    # the same chat after it is answered alone, as the chat's first turn.
    assert gateway.queued(case.name) == 0
    sent = await sentinel(gateway, case, fake, event="forged-2")
    assert len(sent) == 1 and f"#1 {SENTINEL}" in sent[0].text, sent


@pytest.mark.parametrize("junk", ["\udcff\udcfe", "é"], ids=["not utf-8", "not ascii"])
async def test_signature_headers_that_are_not_text_refused(
    case: ChannelCase, fake: FakePlatform, gateway: Gateway, junk: str
):
    """Each header the signing added, spoiled in turn with bytes that are not UTF-8 or not
    ASCII: a 401 like any other bad signature, not a 500 from the comparison (a 500 the
    platform would retry)."""
    msg = case.message("hello", chat=case.chat, event="junk-1")
    signed = case.sign(msg)
    added = [k for k, v in signed.headers.items() if msg.headers.get(k) != v]
    assert added, f"{case.name}: signing added no header"
    for name in added:
        spoiled = signed.with_headers(**{name: junk + signed.headers[name]})
        assert await gateway.post_raw(case, spoiled) == 401, name
    assert gateway.queued(case.name) == 0


async def test_unsigned_refused(case: ChannelCase, fake: FakePlatform, gateway: Gateway):
    status, _ = await gateway.post(case, case.message("hello", chat=case.chat, event="bare-1"))
    assert status == 401
    assert gateway.queued(case.name) == 0


async def test_stale_timestamp_refused(case: ChannelCase, fake: FakePlatform, gateway: Gateway):
    msg = case.message("hello", chat=case.chat, event="old-1")
    stale = case.stale(msg)
    if stale is None:
        pytest.skip(f"{case.name} signs no timestamp (replays are caught by the dedupe)")
    status, _ = await gateway.post(case, stale)
    assert status == 401
    assert gateway.queued(case.name) == 0
    # The same body signed now is taken: the refusal was the timestamp's.
    status, _ = await gateway.post(case, case.sign(msg))
    assert 200 <= status < 300
    assert gateway.queued(case.name) == 1


async def test_malformed_body_refused(case: ChannelCase, fake: FakePlatform, gateway: Gateway):
    status, body = await gateway.post(case, case.sign(case.malformed()))
    assert status == 400, body
    assert gateway.queued(case.name) == 0
    sent = await sentinel(gateway, case, fake, event="malformed-2")
    assert len(sent) == 1 and f"#1 {SENTINEL}" in sent[0].text, sent


@pytest.mark.parametrize(
    ("golden_case", "golden"), GOLDENS, ids=[f"{c.name}-{g.name}" for c, g in GOLDENS]
)
async def test_recorded_payload_parsed(golden_case: ChannelCase, golden: Golden, tmp_path: Path):
    async with golden_case.fake() as fake:
        channel = build_channel(golden_case, fake, tmp_path)
        req = webhook_request(golden_case, golden_case.sign(golden.request))
        channel.verify(req)
        check_golden(golden, lambda: channel.parse(req))


@pytest.mark.parametrize(
    ("expect", "why"),
    [
        ({}, "no expectation"),
        ({"status": 200, "note": "ignored"}, "`events`"),
        ({"events": 1}, "none of its fields"),
        ({"events": 0, "text": "hi"}, "event fields ['text']"),
        ({"events": 1, "meta": {}}, "`meta`"),
        ({"events": 0, "txt": "hi"}, "unknown keys ['txt']"),
        ({"refused": ""}, "`refused`"),
        ({"refused": "bad", "events": 0}, "`refused`"),
    ],
)
def test_a_golden_that_could_not_fail_is_itself_a_failure(expect: dict[str, object], why: str):
    """Only the keys a golden names are compared: an `expect` naming nothing (or only what any
    reply has) would pass whatever parse gave."""
    golden = Golden("made-up", Request(b""), expect)
    with pytest.raises(AssertionError, match=re.escape(why)):
        check_golden(golden, WebhookReply)


def test_a_golden_checks_what_it_names_and_a_refusal_is_one() -> None:
    check_golden(Golden("ignored", Request(b""), {"events": 0}), WebhookReply)
    with pytest.raises(AssertionError, match="parsed"):
        check_golden(Golden("ignored", Request(b""), {"events": 1, "text": "hi"}), WebhookReply)

    def refuse() -> WebhookReply:
        raise PayloadError("not a message at all")

    check_golden(Golden("junk", Request(b""), {"refused": "not a message"}), refuse)
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        check_golden(Golden("junk", Request(b""), {"refused": "not a message"}), WebhookReply)


def test_every_recorded_payload_is_checked(case: ChannelCase) -> None:
    """A payload recorded in `tests/fixtures/<channel>/` that no golden reads is never checked,
    and a golden without its payload checks nothing: the two lists are the same."""
    recorded = {
        p.stem
        for p in (FIXTURES / case.name).iterdir()
        if p.is_file() and p.name not in NOT_PAYLOADS
    }
    assert recorded, f"no recorded payloads in tests/fixtures/{case.name}/"
    assert sorted(g.name for g in case.goldens()) == sorted(recorded)


ROUTES = [(c, w) for c in CASES for w in ways_of(c)]


@dataclass
class Routed:
    """A gateway taking one channel's payloads one way (see ways.py)."""

    case: ChannelCase
    fake: FakePlatform
    gw: Gateway
    link: Link
    dialogue: EchoDialogue

    async def deliver(self, req: Request) -> None:
        await self.link.deliver(self.gw, req)

    async def sentinel(self, event: str) -> list[Sent]:
        return await sentinel(self.gw, self.case, self.fake, event=event, deliver=self.deliver)


@pytest.fixture(params=ROUTES, ids=[f"{c.name}-{w.name}" for c, w in ROUTES])
async def routed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Routed]:
    case, way = request.param
    async with case.fake() as fake, way.open(case, fake) as link:
        settings = build_settings(case, fake, tmp_path, **link.settings(fake))
        dialogue = EchoDialogue()
        async with running_gateway(settings, nlu=KeywordNlu(), dialogue=dialogue) as gw:
            yield Routed(case, fake, gw, link, dialogue)


async def test_duplicate_delivery_answered_once(routed: Routed):
    """The same event twice (a platform's retry, a redelivery after a lost acknowledgement):
    queued once, one reply at the platform (a valid message after it is answered as turn 2)."""
    case, gw = routed.case, routed.gw
    msg = case.message("hello there", chat=case.chat, event="dup-1")
    await routed.deliver(msg)
    await routed.deliver(msg)
    assert gw.queued(case.name) == 1
    assert gw.duplicates(case.name) == 1
    await wait_sent(routed.fake, 1)
    # Delivered once the first reply is out, so that it cannot join the first turn: had the
    # retry been answered too, its reply would come before this one (or be turn 2).
    sent = await routed.sentinel("dup-2")
    assert len(sent) == 2, sent
    assert "#1 hello there" in sent[0].text and f"#2 {SENTINEL}" in sent[1].text


async def test_malformed_payload_not_queued(routed: Routed):
    """A payload the adapter refuses, whichever way it came: nothing queued or answered (the
    webhook answers 400; the other ways acknowledge it, or leave the mail unseen)."""
    await routed.link.deliver_malformed(routed.gw)
    sent = await routed.sentinel("malformed-way")
    assert len(sent) == 1 and f"#1 {SENTINEL}" in sent[0].text, sent
    assert routed.gw.queued(routed.case.name) == 1


async def test_same_event_as_the_webhook(routed: Routed):
    """A message that came another way reaches the bot as the webhook's parse reads it: the
    same conversation, text and event id, answered in the same chat."""
    case, gw = routed.case, routed.gw
    msg = case.message("same words", chat=case.chat, event="same-1")
    channel = gw.services.channels[case.name]
    [expected] = channel.parse(webhook_request(case, case.sign(msg))).events
    await routed.deliver(msg)
    [reply] = await wait_sent(routed.fake, 1)
    [(session_key, text, payload)] = routed.dialogue.seen
    assert (text, payload) == (expected.text, expected.payload)
    assert expected.conversation.key in session_key, (session_key, expected.conversation)
    assert (reply.chat_id, reply.thread_id) == (
        expected.conversation.chat_id,
        expected.conversation.thread_id if case.name != "email" else reply.thread_id,
    )
    assert gw.queued(case.name) == 1 and gw.duplicates(case.name) == 0


async def test_capabilities_honoured(case: ChannelCase, fake: FakePlatform, tmp_path: Path):
    channel = build_channel(case, fake, tmp_path)
    caps = channel.capabilities
    words = [f"w{i}" for i in range(caps.max_text * 2 // 4)]  # ~2.5 messages' worth
    text = " ".join(words[:40]) + "\n\n" + " ".join(words[40:])
    n = caps.max_buttons + 2 if caps.buttons == "native" else 3
    buttons = tuple(
        Button(label=f"Choice {i} " + "long " * 30, payload=f"/choose_{i}_" + "x" * 120)
        for i in range(1, n + 1)
    )
    await channel.start()
    try:
        await channel.send(
            Outbound(
                conversation=ConversationRef(channel=case.name, chat_id=case.chat),
                text=text,
                buttons=buttons,
            )
        )
    finally:
        await channel.close()
    sent = fake.sent()
    assert len(sent) >= 3, "a text of 2.5 times max_text is split"
    assert all(len(s.text) <= caps.max_text for s in sent)
    joined = " ".join(s.text for s in sent).split()
    assert joined[: len(words)] == words, "split at word boundaries, nothing lost or cut"
    shown = [b for s in sent for b in s.buttons]
    assert all(not s.buttons for s in sent[:-1]), "buttons ride on the last part"
    if caps.buttons == "numbered":
        assert shown == []
        assert all(f"{i}. Choice {i}" in sent[-1].text for i in range(1, n + 1))
        return
    assert len(shown) == caps.max_buttons
    assert all(len(label) <= caps.max_button_label for label, _ in shown)
    if caps.max_payload_bytes is not None:
        assert all(len(data.encode()) <= caps.max_payload_bytes for _, data in shown)
    assert len({data for _, data in shown}) == len(shown), "each button keeps its own payload"
    for i in (n - 1, n):  # the ones past max_buttons are listed by number, as typed choices
        assert f"{i}. Choice {i}" in sent[-1].text
