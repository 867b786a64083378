"""core/nlu/hub.py: where the base model is loaded from, and one short look at the hub."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from structlog.testing import capture_logs

from core.nlu import hub
from core.nlu.config import TINY, TrainConfig
from core.nlu.train import build_encoder
from tests.support.fakes.model_hub import serve_hub


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    hub.hub_reachable.cache_clear()
    yield
    hub.hub_reachable.cache_clear()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fake_hub(tmp_path: Path) -> Iterator[str]:
    """A server on loopback that answers 404, as the hub does for a name it does not serve."""
    with serve_hub("acme/nothing", tmp_path, listing=404) as fake:
        yield fake.url
    assert fake.requests == ["HEAD /api/models"], "one look, at the hub's model listing"


def test_a_checkpoint_directory_is_loaded_from_disk_without_asking_the_hub(
    tmp_path: Path,
) -> None:
    source = hub.base_model_source(str(tmp_path), f"http://127.0.0.1:{closed_port()}")
    assert source == hub.BaseModelSource(str(tmp_path), True, "local checkpoint")
    assert hub.hub_reachable.cache_info().currsize == 0


def test_offline_keeps_to_the_cache() -> None:
    source = hub.base_model_source("distilbert-base-uncased", None)
    assert source.local_only
    assert hub.hub_reachable.cache_info().currsize == 0


def test_an_unreachable_hub_is_asked_once_and_then_the_cache_is_used() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    first = hub.base_model_source("distilbert-base-uncased", endpoint)
    again = hub.base_model_source("distilbert-base-uncased", endpoint)
    assert first.local_only and again.local_only
    assert "unreachable" in first.why
    info = hub.hub_reachable.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_a_hub_that_answers_is_used(fake_hub: str) -> None:
    source = hub.base_model_source("distilbert-base-uncased", fake_hub)
    assert not source.local_only
    assert source.why == f"model hub {fake_hub} answered 404"


def test_training_without_the_hub_falls_back_in_one_line() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    texts = ["where is my order", "reset my password", "hello there", "track my parcel"]
    with capture_logs() as logs:
        _, _, kind = build_encoder(
            TrainConfig(base_model="no-such-org/no-such-model", hub=endpoint), texts, ["a", "b"]
        )
    assert kind == "scratch"
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["nlu.base_model_unavailable"]
    assert "unreachable" in warnings[0]["source"]


def test_a_hub_name_is_downloaded_once_then_fine_tuned_and_cached(
    fixture_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make run` does on a machine that reaches the hub: settings name a hub model and
    the hub's endpoint; training downloads the checkpoint through the hub's resolve URLs and
    fine-tunes it (no fallback). Later, with the hub gone, the cached download is used."""
    import huggingface_hub.constants

    from config.settings import load_settings
    from core.nlu import artifacts
    from core.nlu.data import load_data
    from core.nlu.train import train
    from gateway.nlu_loader import train_config

    # The tests run with HF_HUB_OFFLINE=1; the user this stands for has not set it.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "served"
    served = artifacts.load(fixture_model_dir)
    served.net.encoder.save_pretrained(base)
    served.tokenizer.save_pretrained(base)
    (base / "tf_model.h5").write_bytes(b"not wanted")
    flows = Path(__file__).resolve().parents[2] / "fixtures" / "nlu"
    examples = load_data(flows)
    with serve_hub("acme/tiny-bert", base) as fake:
        settings = load_settings(
            flows_dir=flows, base_model="acme/tiny-bert", hf_endpoint=fake.url, hf_hub_offline=False
        )
        wanted = train_config(settings)
        config = TINY.with_(base_model=wanted.base_model, hub=wanted.hub, epochs=1)
        with capture_logs() as logs:
            res = train(examples, tmp_path / "model", config, progress=False)
        assert fake.requests[0] == "HEAD /api/models"
        assert "model.safetensors" in fake.downloaded()
        assert "config.json" in fake.downloaded() and "tf_model.h5" not in fake.downloaded()
    assert res.encoder == "pretrained"
    assert not [e for e in logs if e["event"] == "nlu.base_model_unavailable"]
    model = artifacts.load(tmp_path / "model")
    assert model.fingerprint["base_model"] == "acme/tiny-bert"
    # fine-tuned from the served weights (one epoch at a small rate moves them a little)
    start = served.net.encoder.get_input_embeddings().weight
    tuned = model.net.encoder.get_input_embeddings().weight
    assert tuned.shape == start.shape and not torch.equal(tuned, start)
    assert (tuned - start).abs().max() < 0.05
    # the hub is gone (its port closed): one look, then the download in the cache
    hub.hub_reachable.cache_clear()
    gone = TINY.with_(base_model="acme/tiny-bert", hub=fake.url, epochs=1)
    with capture_logs() as logs:
        again = train(examples, tmp_path / "again", gone, progress=False)
    assert again.encoder == "pretrained"
    assert not [e for e in logs if e["event"] == "nlu.base_model_unavailable"]
