"""Start-up: train when missing or stale, reuse when unchanged, refuse a broken directory."""

import asyncio
import shutil
from pathlib import Path

import pytest

from config.settings import load_settings
from core.errors import StartupError
from core.nlu.config import TINY
from gateway.nlu_loader import load_nlu, start_in_background

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"
QUICK = TINY.with_(epochs=2)


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    out = tmp_path / "flows"
    shutil.copytree(FIXTURES, out)
    return out


async def test_trains_once_then_reuses_then_retrains_on_change(flows: Path, tmp_path: Path):
    settings = load_settings(flows_dir=flows, model_dir=tmp_path / "model")
    parser, threshold = load_nlu(settings, progress=False, config=QUICK)
    assert parser.ready() and 0 < threshold < 1
    assert (await parser.parse("where is my order")).intent == "order_status"
    await parser.close()
    stamp = (tmp_path / "model" / "model.safetensors").stat().st_mtime_ns
    parser, _ = load_nlu(settings, progress=False, config=QUICK)
    await parser.close()
    assert (tmp_path / "model" / "model.safetensors").stat().st_mtime_ns == stamp
    extra = "intents:\n  goodbye:\n    examples: [bye, see you, goodbye, later, ciao]\n"
    (flows / "more.yml").write_text(extra)
    parser, _ = load_nlu(settings, progress=False, config=QUICK)
    assert "goodbye" in parser.predictor.labels  # type: ignore[union-attr]
    await parser.close()


def test_configured_threshold_wins(fixture_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(fixture_model_dir, model)
    settings = load_settings(flows_dir=FIXTURES, model_dir=model, confidence_threshold=0.42)
    _, threshold = load_nlu(settings, progress=False, config=TINY, background=True)
    assert threshold == 0.42


def test_corrupt_model_is_refused_with_path(fixture_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(fixture_model_dir, model)
    w = model / "model.safetensors"
    w.write_bytes(b"garbage")
    settings = load_settings(flows_dir=FIXTURES, model_dir=model)
    with pytest.raises(StartupError, match=rf"intent model: {w}: unusable"):
        load_nlu(settings, progress=False, config=TINY)


def test_bad_flows_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text("intents: [1, 2]\n")
    settings = load_settings(flows_dir=tmp_path, model_dir=tmp_path / "m")
    with pytest.raises(StartupError, match=r"x\.yml: `intents:` must map"):
        load_nlu(settings, progress=False, config=TINY)


async def test_background_load_keeps_readiness_red_until_loaded(
    fixture_model_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(fixture_model_dir, model)
    settings = load_settings(flows_dir=FIXTURES, model_dir=model)
    parser, _ = load_nlu(settings, progress=False, config=TINY, background=True)
    assert not parser.ready()
    await start_in_background(parser)
    for _ in range(200):
        if parser.ready():
            break
        await asyncio.sleep(0.02)
    assert parser.ready()
    await parser.close()
