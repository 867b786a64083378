"""Typed keys of the aiohttp application's state."""

from aiohttp import web

from gateway.services import Services

SERVICES = web.AppKey("services", Services)
