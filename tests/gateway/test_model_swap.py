"""A running gateway (the real brain, its worker inside) picks up a newly deployed model while
customers keep writing: every message is handled, none read without a model, and the answers
after the swap come from the new release; no restart."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

from config.settings import load_settings
from core.models import ConversationRef, Inbound, Sender
from core.nlu.releases import Releases
from gateway.build import build_gateway
from gateway.model_and_flows import load_model_and_flows
from tests.support.doubles import RecordingChannel


def release_of(model: Path, rel: Releases, *, rotate: bool = False) -> Path:
    out = rel.new_dir()
    shutil.copytree(model, out)
    if rotate:  # every prediction names another intent: the releases answer differently
        labels = json.loads((out / "labels.json").read_text())
        (out / "labels.json").write_text(json.dumps(labels[1:] + labels[:1]))
    return out


async def test_a_deployed_model_is_served_without_a_restart(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    rel = Releases(root=tmp_path / "models", pointer=tmp_path / "model")
    first = release_of(trained_model_dir, rel)
    rel.deploy(first)
    settings = load_settings(
        model_dir=rel.pointer, data_dir=tmp_path, model_watch_interval=0.05, redis_url=None
    )
    brain = load_model_and_flows(settings, progress=False)
    channel = RecordingChannel()
    # The chat role: the worker in process, no flood control (three customers write fast)
    services = build_gateway(
        settings,
        "chat",
        model_and_flows=brain,
        channels={"test": channel},
        model_in_background=False,
    )
    assert services.engine is not None
    engine, queue = services.engine, services.storage.queue
    sent = 0

    async def customer(n: int, until: asyncio.Event) -> None:
        nonlocal sent
        while not until.is_set():
            sent += 1
            m = Inbound(
                event_id=f"e{n}-{sent}",
                conversation=ConversationRef(channel="test", chat_id=f"c{n}"),
                sender=Sender(id=f"u{n}"),
                text="where is my order",
            )
            done = engine.expect(m)
            assert await queue.put(m)
            await asyncio.wait_for(done, 30)

    async with services.running():
        before = (await brain.nlu.parse("where is my order")).intent
        stop = asyncio.Event()
        talking = [asyncio.create_task(customer(n, stop)) for n in range(3)]
        while sent < 10:
            await asyncio.sleep(0.01)
        second = release_of(trained_model_dir, rel, rotate=True)
        rel.deploy(second)
        deadline = time.monotonic() + 60
        while brain.nlu.loaded_from != second:
            assert time.monotonic() < deadline, "the deployed release was not picked up"
            await asyncio.sleep(0.01)
        at_swap = sent
        while sent < at_swap + 10:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*talking)
        after = (await brain.nlu.parse("where is my order")).intent
    assert after != before and after is not None
    counted = [
        (sample.labels, sample.value)
        for metric in services.metrics.registry.collect()
        if metric.name == "gateway_turns"
        for sample in metric.samples
        if sample.name == "gateway_turns_total"
    ]
    assert sum(n for _, n in counted) == sent, "every message was handled, once"
    assert not [labels for labels, _ in counted if labels["intent"] == "none"], (
        "a message was read without a model"
    )
    assert not [labels for labels, _ in counted if labels["outcome"] == "error"]
    assert channel.sent, "and answered"
