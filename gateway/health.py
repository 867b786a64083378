"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.services import SERVICES

_CHECK_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(name: str, coro: object) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(coro, _CHECK_TIMEOUT)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return name, f"{type(exc).__name__}: {exc}"
    return name, None


async def readyz(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    results = dict(
        await asyncio.gather(
            _check("queue", s.storage.queue.ping()), _check("store", s.storage.store.ping())
        )
    )
    results["model"] = None if s.nlu.ready() else "intent model not loaded"
    ok = all(v is None for v in results.values())
    body = {
        "status": "ready" if ok else "not ready",
        "checks": {k: ("ok" if v is None else v) for k, v in results.items()},
    }
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    with contextlib.suppress(Exception):  # the depth is best effort; the rest still renders
        s.metrics.queue_depth.set(await asyncio.wait_for(s.storage.queue.depth(), _CHECK_TIMEOUT))
    resp = web.Response(body=s.metrics.render())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp
