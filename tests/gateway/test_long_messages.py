"""A long message never stalls the gateway: while the product's real brain handles a 60 KB
one-line mail sent to the SMTP listener, thirty 4,000-character messages at once, or one of a
megabyte, `/healthz` keeps answering within `HEALTHY_MS`. (Entity extraction once ran over the
whole text on the event loop with a quadratic e-mail pattern: seconds of silence for everyone.)"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from core.models import ConversationRef, Inbound, Sender
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.services import Services
from tests.support.doubles import RecordingChannel
from tests.support.fakes.smtp import SmtpSink
from tests.support.redis_server import free_port

HEALTHY_MS = 150.0
"""Well under what a message handled on the event loop costs (a megabyte redacted there three
times took 170 ms), above what a busy CI machine adds to one answer."""


@asynccontextmanager
async def gateway(
    tmp_path: Path, brain: Any, smtp_port: int, channel: RecordingChannel
) -> AsyncIterator[tuple[TestClient[Any, Any], Services, int]]:
    listen = free_port()
    settings = Settings(
        data_dir=tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_starttls=False,
        email_from="Bot <help@shop.example>",
        smtp_listen_port=listen,
    )
    services = build_gateway(
        settings,
        "serve",
        nlu=brain.nlu,
        dialogue=brain.dialogue,
        with_worker=True,
        channels={"test": channel},
    )
    assert "smtp listener" in services.part_names
    client = TestClient(TestServer(create_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, services, listen
    finally:
        await client.close()


# Another process, as a load balancer: a stalled event loop (the test's own included) or a
# thread holding the GIL cannot hide from it. It says "ready" after its first answer and, told
# to stop on stdin, prints how long each answer took (ms).
PROBE = """
import json, select, sys, time, urllib.request
times = []
while not select.select([sys.stdin], [], [], 0.01)[0]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(sys.argv[1], timeout=120) as resp:
        resp.read()
    times.append((time.perf_counter() - t0) * 1000)
    if len(times) == 1:
        print("ready", flush=True)
print(json.dumps(times), flush=True)
"""


@asynccontextmanager
async def health_probe(port: int) -> AsyncIterator[list[float]]:
    """Yields a list that holds, once the block has ended, each `/healthz` answer time (ms)."""
    url = f"http://127.0.0.1:{port}/healthz"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, url, stdin=PIPE, stdout=PIPE
    )
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
    times: list[float] = []
    try:
        yield times
    finally:
        out, _ = await asyncio.wait_for(proc.communicate(b"stop"), 150)
        times.extend(json.loads(out))


async def until(handled: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not handled():
        assert time.monotonic() < deadline, "the messages were not answered"
        await asyncio.sleep(0.02)


async def test_a_60_kb_one_line_mail_does_not_stall_healthz(
    real_brain: Any, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    async with gateway(tmp_path, real_brain, smtp_sink.port, RecordingChannel()) as (
        client,
        _services,
        listen,
    ):
        mail = EmailMessage()
        mail["From"] = "Mallory <mallory@client.example>"
        mail["To"] = "help@shop.example"
        mail["Subject"] = "hello"
        mail.set_content("a" * 60_000)
        async with health_probe(client.port) as times:
            await aiosmtplib.send(
                mail, hostname="127.0.0.1", port=listen, sender="mallory@client.example"
            )
            await until(lambda: len(smtp_sink.mail) >= 1)
        assert len(times) > 1
        assert max(times) < HEALTHY_MS, f"/healthz took {max(times):.0f} ms"


@pytest.mark.parametrize(("count", "size"), [(30, 4_000), (1, 1_000_000)])
async def test_long_messages_at_once_do_not_stall_healthz(
    real_brain: Any, tmp_path: Path, smtp_sink: SmtpSink, count: int, size: int
) -> None:
    channel = RecordingChannel()
    async with gateway(tmp_path, real_brain, smtp_sink.port, channel) as (client, services, _):
        async with health_probe(client.port) as times:
            for i in range(count):
                await services.storage.queue.put(
                    Inbound(
                        event_id=f"long-{i}",
                        conversation=ConversationRef(channel="test", chat_id=f"visitor-{i}"),
                        sender=Sender(id=f"visitor-{i}"),
                        text="x" * size,
                    )
                )
            await until(lambda: len({m.conversation.chat_id for m in channel.sent}) == count)
        assert len(times) > 1
        assert max(times) < HEALTHY_MS, f"/healthz took {max(times):.0f} ms"
