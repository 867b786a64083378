"""The agent console: its pages at /console and its JSON API under /api/ (`add_console`)."""

from __future__ import annotations

from aiohttp import web

from gateway.console import api, insights_api, pages, privacy_api, retrain_api, review_api
from gateway.console.auth import SIGNIN


def add_console(app: web.Application) -> None:
    """Add the console's routes (needs `services.desk`; without one nothing is added)."""
    app[SIGNIN] = {}
    api.register(app)
    privacy_api.register(app)
    retrain_api.register(app)
    pages.register(app)
    insights_api.register(app)
    review_api.register(app)
