"""Releases and the hot swap: the pointer switches atomically and keeps the previous release for
a rollback; a process's watcher loads a newly deployed model off the loop and swaps it in while
messages keep flowing (none answered without a model), hears a Redis announcement at once, and
keeps serving when a deployed release cannot be loaded."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from core.errors import ReleaseError
from core.nlu.parser import ModelParser, ServeConfig
from core.nlu.releases import Releases
from core.nlu.watch import ModelWatcher, announce
from core.redis.client import connect
from core.redis.relay import RedisRelay


def release_of(model: Path, rel: Releases, *, rotate: bool = False) -> Path:
    """A copy of a trained model as a release; `rotate`: its labels shifted by one, so every
    prediction names another intent (which tells the models apart)."""
    out = rel.new_dir()
    shutil.copytree(model, out)
    if rotate:
        labels = json.loads((out / "labels.json").read_text())
        (out / "labels.json").write_text(json.dumps(labels[1:] + labels[:1]))
    return out


def test_deploy_keeps_the_previous_and_rollback_swaps_them(
    fixture_model_dir: Path, tmp_path: Path
) -> None:
    rel = Releases(root=tmp_path / "models", pointer=tmp_path / "model")
    with pytest.raises(ReleaseError, match="no previous release"):
        rel.rollback()
    first, second = release_of(fixture_model_dir, rel), release_of(fixture_model_dir, rel)
    assert rel.deploy(first) is None and rel.current() == first
    assert rel.deploy(second) == first
    assert (rel.current(), rel.previous()) == (second, first)
    assert rel.rollback() == (first, second)
    assert (rel.current(), rel.previous()) == (first, second)
    assert not list(tmp_path.glob(".*.tmp")) and not list(rel.root.glob(".*.tmp"))


def test_a_model_dir_trained_before_releases_is_adopted(
    fixture_model_dir: Path, tmp_path: Path
) -> None:
    rel = Releases(root=tmp_path / "models", pointer=tmp_path / "model")
    shutil.copytree(fixture_model_dir, rel.pointer)
    new = release_of(fixture_model_dir, rel)
    old = rel.deploy(new)
    assert old is not None and old.name.endswith("-adopted") and (old / "labels.json").is_file()
    assert rel.pointer.is_symlink() and rel.current() == new and rel.previous() == old


async def test_hot_swap_with_messages_flowing(fixture_model_dir: Path, tmp_path: Path) -> None:
    rel = Releases(root=tmp_path / "models", pointer=tmp_path / "model")
    rel.deploy(release_of(fixture_model_dir, rel))
    parser = ModelParser(rel.pointer, ServeConfig(threads=1))
    await parser.start()
    before = (await parser.parse("hello there")).intent
    answers: list[str | None] = []
    stop = asyncio.Event()

    async def customer(n: int) -> None:
        while not stop.is_set():
            answers.append((await parser.parse(f"hello there {n}")).intent)
            await asyncio.sleep(0)

    try:
        async with ModelWatcher(parser, interval=0.05) as watcher:
            talking = [asyncio.create_task(customer(n)) for n in range(4)]
            while len(answers) < 20:
                await asyncio.sleep(0.01)
            new = release_of(fixture_model_dir, rel, rotate=True)
            rel.deploy(new)
            deadline = time.monotonic() + 60
            while parser.loaded_from != new:
                assert time.monotonic() < deadline, "the new release was not picked up"
                await asyncio.sleep(0.01)
            seen = len(answers)
            while len(answers) < seen + 20:  # answers from the new model, too
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(*talking)
            assert watcher.swaps == 1 and watcher.last_swap_s is not None
    finally:
        await parser.close()
    assert None not in answers, "a message was answered without a model"
    assert answers[0] == before and answers[-1] != before


async def test_a_release_that_cannot_load_is_not_served(
    fixture_model_dir: Path, tmp_path: Path
) -> None:
    rel = Releases(root=tmp_path / "models", pointer=tmp_path / "model")
    good = release_of(fixture_model_dir, rel)
    rel.deploy(good)
    parser = ModelParser(rel.pointer, ServeConfig(threads=1))
    await parser.start()
    try:
        watcher = ModelWatcher(parser, interval=60)
        broken = release_of(fixture_model_dir, rel)
        (broken / "model.safetensors").write_bytes(b"not weights")
        rel.deploy(broken)
        assert not await watcher.check()
        assert parser.loaded_from == good and (await parser.parse("hello")).intent is not None
        assert not await watcher.check()  # refused once, not loaded again at every look
    finally:
        await parser.close()


async def test_a_redis_announcement_is_heard_at_once(
    fixture_model_dir: Path, tmp_path: Path, redis_url: str
) -> None:
    rel = Releases(root=tmp_path / "models", pointer=tmp_path / "model")
    rel.deploy(release_of(fixture_model_dir, rel))
    parser = ModelParser(rel.pointer, ServeConfig(threads=1))
    await parser.start()
    sender = RedisRelay(connect(redis_url))
    try:
        # A look every minute: only the announcement can make it swap within the test.
        async with ModelWatcher(parser, interval=60, relay=RedisRelay(connect(redis_url))):
            new = release_of(fixture_model_dir, rel)
            rel.deploy(new)
            await announce(sender, new)
            deadline = time.monotonic() + 30
            while parser.loaded_from != new:
                assert time.monotonic() < deadline, "the announcement was not heard"
                await asyncio.sleep(0.01)
    finally:
        await sender.close()
        await parser.close()
