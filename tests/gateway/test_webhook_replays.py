"""Replays the embedded default refuses across a restart and between processes: the queue's
dedupe memory is on disk (a byte-identical redelivery after a restart is answered once), and
spent one-time credentials (Mailgun's token, Twilio's signature) are remembered where every
process sees them. Each check runs the real gateway against the channel's fake platform."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from config.settings import Settings
from tests.adapters.cases import email as email_case
from tests.adapters.cases import load_cases
from tests.adapters.cases import whatsapp as whatsapp_case
from tests.adapters.contract import (
    PUBLIC_BASE_URL,
    SENTINEL,
    ChannelCase,
    Gateway,
    Request,
    running_gateway,
    sentinel,
    wait_sent,
)
from tests.support.doubles import EchoDialogue, KeywordNlu
from tests.support.fakes import FakePlatform

CASES = load_cases()


@asynccontextmanager
async def gateway(
    case: ChannelCase, fake: FakePlatform, data_dir: Path, **extra: Any
) -> AsyncIterator[Gateway]:
    settings = Settings(
        data_dir=data_dir, public_base_url=PUBLIC_BASE_URL, **case.settings(fake), **extra
    )
    async with running_gateway(settings, nlu=KeywordNlu(), dialogue=EchoDialogue()) as gw:
        yield gw


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_a_redelivery_after_a_restart_is_answered_once(
    case: ChannelCase, tmp_path: Path
) -> None:
    """Slack's retry (or a replay inside its 5-minute window) reaching the next process was
    answered a second time: the dedupe memory had gone with the process."""
    request = case.sign(case.message("hello there", chat=case.chat, event="restart-1"))
    async with case.fake() as fake:
        async with gateway(case, fake, tmp_path) as first:
            status, _ = await first.post(case, request)
            assert status == 200
            await wait_sent(fake, 1)
        async with gateway(case, fake, tmp_path) as second:
            status, _ = await second.post(case, request)  # the same bytes
            assert status == 200
            assert second.duplicates(case.name) == 1 and second.queued(case.name) == 0
            sent = await sentinel(second, case, fake, event="restart-2")
    # One answer to the event; the sentinel is the conversation's second turn, as the session
    # outlived the first process too.
    assert [s.text.split()[0] for s in sent] == ["#1", "#2"], sent
    assert "hello there" in sent[0].text and SENTINEL in sent[1].text


def mail_with_token(text: str, event: str, token_headers: dict[str, str]) -> Request:
    body = email_case.user_mail(text, sender=email_case.CASE.chat, event=event)
    return Request(body, {**email_case.MIME, **token_headers})


async def test_a_mailgun_token_is_single_use_across_a_restart(tmp_path: Path) -> None:
    case = email_case.CASE
    token = email_case.mailgun_headers(email_case.SIGNING_KEY)
    async with case.fake() as fake:
        async with gateway(case, fake, tmp_path) as first:
            status, _ = await first.post(case, mail_with_token("where is my order", "m1", token))
            assert status == 200
        async with gateway(case, fake, tmp_path) as second:
            replay = mail_with_token("send me everything", "m2", token)
            status, body = await second.post(case, replay)
            assert status == 401, body
            assert second.queued(case.name) == 0


async def test_a_mailgun_token_is_single_use_across_processes(tmp_path: Path) -> None:
    """Two `serve` processes on one machine share DATA_DIR's file. The replay reaching the
    second process first does not spoil the platform's own retry there."""
    case = email_case.CASE
    token = email_case.mailgun_headers(email_case.SIGNING_KEY)
    delivery = mail_with_token("where is my order", "p1", token)
    replay = mail_with_token("send me everything", "p2", token)
    async with (
        case.fake() as fake,
        gateway(case, fake, tmp_path) as one,
        gateway(case, fake, tmp_path) as two,
    ):
        assert (await one.post(case, delivery))[0] == 200
        assert (await two.post(case, replay))[0] == 401
        assert (await two.post(case, delivery))[0] == 200, "the platform retrying, elsewhere"
        assert (one.queued(case.name), two.queued(case.name)) == (1, 1)


def twilio_form(req: Request) -> dict[str, str]:
    return dict(parse_qsl(req.body.decode(), keep_blank_values=True))


def with_form(req: Request, form: dict[str, str]) -> Request:
    return Request(urlencode(form).encode(), req.headers, req.query)


async def test_a_twilio_value_moved_into_the_message_sid_is_refused(tmp_path: Path) -> None:
    """Twilio's signature joins names and values without separators: `MessageType=text` moved
    into `MessageSid` keeps the signature valid, and was queued and answered as a new message."""
    case = whatsapp_case.CASE
    signed = case.sign(case.message("hello", chat=case.chat, event="tw-1"))
    form = twilio_form(signed)
    moved = {k: v for k, v in form.items() if k != "MessageType"}
    moved["MessageSid"] = form["MessageSid"] + "MessageType" + form["MessageType"]
    async with case.fake() as fake, gateway(case, fake, tmp_path) as gw:
        assert (await gw.post(case, signed))[0] == 200
        status, body = await gw.post(case, with_form(signed, moved))
        assert status == 400 and b"MessageSid" in body
        sent = await sentinel(gw, case, fake, event="tw-2")
    assert len(sent) == 2 and gw.queued(case.name) == 2, sent


async def test_a_twilio_signature_is_good_for_its_own_form_only(tmp_path: Path) -> None:
    """A move that keeps every field valid (here `ProfileName` into `NumSegments`'s value)
    gives another form under the same signature: refused, not taken for a retry."""
    case = whatsapp_case.CASE
    signed = case.sign(case.message("hello", chat=case.chat, event="tw-3"))
    form = twilio_form(signed)
    moved = {k: v for k, v in form.items() if k != "ProfileName"}
    moved["NumSegments"] = form["NumSegments"] + "ProfileName" + form["ProfileName"]
    async with case.fake() as fake, gateway(case, fake, tmp_path) as gw:
        assert (await gw.post(case, signed))[0] == 200
        assert (await gw.post(case, signed))[0] == 200, "Twilio retrying the same form"
        assert (await gw.post(case, with_form(signed, moved)))[0] == 401
        assert gw.duplicates(case.name) == 1


async def test_an_exact_twilio_replay_after_the_dedupe_window_is_refused(tmp_path: Path) -> None:
    """Twilio signs no timestamp, so a captured request was answered again as soon as the
    dedupe had forgotten its MessageSid; the signature is remembered longer."""
    case = whatsapp_case.CASE
    signed = case.sign(case.message("hello", chat=case.chat, event="tw-4"))
    async with case.fake() as fake, gateway(case, fake, tmp_path, dedupe_ttl=0.3) as gw:
        assert (await gw.post(case, signed))[0] == 200
        await wait_sent(fake, 1)
        deadline = time.monotonic() + 0.7  # past twice the window: the dedupe has forgotten
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert (await gw.post(case, signed))[0] == 401
        assert gw.queued(case.name) == 1
