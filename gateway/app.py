"""The aiohttp application: routes, and the process's parts started and stopped with it."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import handoff_api, health, webchat, webhooks
from gateway.console import add_console
from gateway.services import SERVICES, Services
from gateway.webchat_guard import GUARD, build_guard

LINGER = 2.0
"""Seconds a refused request's unread body is still taken in before its connection closes (so
an honest client reads the answer instead of a reset); aiohttp's default of 10 would let a
client refused for trickling hold its connection that much longer."""


def create_app(services: Services) -> web.Application:
    settings = services.settings
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # aiohttp keeps an idle connection, or one whose headers are still arriving, for an
        # hour by default; the body's own deadline is the webhook's (BODY_READ_TIMEOUT).
        handler_args={"keepalive_timeout": settings.idle_timeout, "lingering_time": LINGER},
    )
    app[SERVICES] = services
    app[GUARD] = build_guard(settings, services.storage.limits)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        async with services.running():
            yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    webhooks.route_webhooks(app, services)
    app.router.add_get("/", webchat.index)
    app.router.add_get("/chat", webchat.page)
    app.router.add_get("/chat/ws", webchat.socket)
    app.router.add_get("/chat/static/{name}", webchat.static)
    app[webchat.SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(webchat.close_sockets)
    handoff_api.register(app)
    if services.desk is not None:
        add_console(app)
    return app


def create_probe_app(services: Services) -> web.Application:
    """Health and metrics only, for a worker process (one of its parts: started after the
    others, see `gateway.build`)."""
    app = web.Application()
    app[SERVICES] = services
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    return app
