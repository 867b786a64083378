"""The aiohttp application: routes, and the services started and stopped with it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway import handoff_api, health, webchat, webhooks
from gateway.keys import SERVICES
from gateway.services import Services


def create_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=services.settings.max_body_bytes)
    app[SERVICES] = services

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await services.start()
        yield
        await services.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    webhooks.route_webhooks(app, services)
    app.router.add_get("/", webchat.index)
    app.router.add_get("/chat", webchat.page)
    app.router.add_get("/chat/ws", webchat.socket)
    app.router.add_static("/chat/static", webchat.STATIC, show_index=False)
    handoff_api.register(app)
    return app


def create_probe_app(services: Services) -> web.Application:
    """Health and metrics only, for a worker process (its services are started by the caller)."""
    app = web.Application()
    app[SERVICES] = services
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    return app
