"""core/nlu/hub.py: where the base model is loaded from, and one short look at the hub."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core.nlu import hub
from core.nlu.config import TrainConfig
from core.nlu.train import build_encoder


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
def fake_hub() -> Iterator[str]:
    """A server on loopback that answers every request 404, as the hub does for a name it
    does not serve."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            seen.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    assert seen == ["/api/models"], "one look, at the hub's model listing"


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
