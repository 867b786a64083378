"""`shop`: the demo shop backend as its own small HTTP service (orders, password resets,
refund tickets), for `SHOP_API_URL=http://127.0.0.1:8081`."""

from __future__ import annotations

import argparse
from typing import Any

from aiohttp import web

from gateway.commands._common import add_log_level, port_number, run_web, settings_from
from integrations.shop import Shop

SHOP = web.AppKey("shop", Shop)


async def _order(request: web.Request) -> web.Response:
    order = request.app[SHOP].order(request.match_info["order_id"])
    if order is None:
        return web.json_response({"found": False, "error": "no such order"}, status=404)
    return web.json_response(order)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON body") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


def _key(request: web.Request) -> str | None:
    """The client's `Idempotency-Key`: a repeated key gets the first answer, nothing new."""
    return request.headers.get("Idempotency-Key") or None


async def _reset(request: web.Request) -> web.Response:
    data = await _body(request)
    try:
        made = request.app[SHOP].password_reset(str(data.get("email", "")), _key(request))
    except ValueError:
        return web.json_response({"error": "email: not an e-mail address"}, status=400)
    return web.json_response(made, status=201)


async def _refund(request: web.Request) -> web.Response:
    data = await _body(request)
    order_id, reason = str(data.get("order_id", "")), str(data.get("reason", ""))
    if not order_id or not reason:
        return web.json_response({"error": "order_id and reason are required"}, status=400)
    ticket = request.app[SHOP].refund(order_id, reason, _key(request))
    if ticket is None:
        return web.json_response({"error": "no such order"}, status=404)
    return web.json_response(ticket, status=201)


async def _cancel(request: web.Request) -> web.Response:
    done = request.app[SHOP].cancel(request.match_info["order_id"])
    if done is None:
        return web.json_response({"error": "no such order"}, status=404)
    return web.json_response(done)


async def _address(request: web.Request) -> web.Response:
    data = await _body(request)
    address = str(data.get("address", "")).strip()
    if not address:
        return web.json_response({"error": "address is required"}, status=400)
    done = request.app[SHOP].change_address(request.match_info["order_id"], address)
    if done is None:
        return web.json_response({"error": "no such order"}, status=404)
    return web.json_response(done)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def build_shop_app(shop: Shop | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SHOP] = shop or Shop()
    app.router.add_get("/healthz", _health)
    app.router.add_get("/orders/{order_id}", _order)
    app.router.add_post("/password-resets", _reset)
    app.router.add_post("/refunds", _refund)
    app.router.add_post("/orders/{order_id}/cancel", _cancel)
    app.router.add_post("/orders/{order_id}/address", _address)
    return app


def register(sub: Any) -> None:
    p = sub.add_parser(
        "shop",
        help="run the demo shop backend as an HTTP service",
        description=(
            "Serve the demo shop (orders A1B2C3 shipped, Z9Y8X7 processing, K4M5N6 delivered, "
            "Q2W3E4 cancelled; password resets; refund tickets) over HTTP: GET /orders/{id}, "
            "POST /password-resets {email}, POST /refunds {order_id, reason}; a write repeating "
            "an Idempotency-Key header gets the first result again. Point the gateway at it "
            "with SHOP_API_URL=http://HOST:PORT; without it the gateway uses the same shop "
            "in-process."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=8081, help="port (default 8081)")
    add_log_level(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    ready = f"shop: listening on http://{args.host}:{args.port}"
    run_web(build_shop_app(), host=args.host, port=args.port, ready=ready, loop=settings.event_loop)
    return 0
