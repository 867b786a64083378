"""Fixtures more than one folder of the suite uses; a folder's own fixtures are in its own
`conftest.py` (`tests/gateway/`, `tests/adapters/`, `tests/core/sql/`, `tests/gateway/ingress/`).
They are written in `tests/support/`, one module per concern, and imported where used."""

import os
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.support.brain import real_brain, real_brain_settings
from tests.support.fakes.slack import fake_slack
from tests.support.fakes.smtp import smtp_sink
from tests.support.fakes.telegram import fake_telegram
from tests.support.fakes.twilio import fake_twilio
from tests.support.gateway_app import gateway_factory
from tests.support.model import fixture_model_dir, trained_model_dir
from tests.support.redis_server import own_redis, redis_server, redis_url

__all__ = [
    "fake_slack",
    "fake_telegram",
    "fake_twilio",
    "fixture_model_dir",
    "gateway_factory",
    "own_redis",
    "real_brain",
    "real_brain_settings",
    "redis_server",
    "redis_url",
    "smtp_sink",
    "trained_model_dir",
]


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs a command in this process (`main([... "--log-level", "error"])`)
    configures structlog for the whole process; put it back, so that a later test's
    `capture_logs` sees warnings whatever ran before it."""
    before: dict[str, Any] = structlog.get_config()
    yield
    structlog.configure(**before)
