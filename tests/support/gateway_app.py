"""A running gateway app (aiohttp test server on a free loopback port) built by the product's
`build_gateway` with whatever intent parser, dialogue and extra channels a test gives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import load_settings
from core.ports import Channel, Dialogue, IntentParser
from gateway.app import create_app
from gateway.build import build_gateway
from gateway.services import Services

GatewayFactory = Callable[..., Any]


@asynccontextmanager
async def running_gateway(
    *,
    nlu: IntentParser,
    dialogue: Dialogue,
    channels: dict[str, Channel] | None = None,
    with_worker: bool = True,
    **settings: Any,
) -> AsyncIterator[tuple[TestClient[Any, Any], Services]]:
    services = build_gateway(
        load_settings(**settings),
        "serve",
        nlu=nlu,
        dialogue=dialogue,
        with_worker=with_worker,
        channels=channels,
    )
    client = TestClient(TestServer(create_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, services
    finally:
        await client.close()


@pytest.fixture
def gateway_factory(tmp_path: Any) -> GatewayFactory:
    """`async with gateway_factory(nlu=..., dialogue=..., channels=...) as (client, services)`."""

    def make(**kw: Any) -> Any:
        kw.setdefault("data_dir", tmp_path)
        return running_gateway(**kw)

    return make
