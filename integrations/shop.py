"""The demo shop backend the default bot talks to: orders with statuses, password-reset requests
and refund tickets. Pure logic here; `register_shop` exposes it as actions, in-process or through
its HTTP service (`python -m gateway shop`)."""

from __future__ import annotations

import copy
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.errors import ActionError
from integrations.guard import SideEffect
from integrations.http import idempotency_key
from integrations.registry import ActionRegistry, CallPolicy

ORDER_ID = re.compile(r"^[A-Z0-9]{6}$")
DETAILS = {
    "processing": "We're packing it now; it should ship within one business day.",
    "shipped": "It's on its way and should arrive within 2-3 business days.",
    "delivered": "It was delivered. If you can't find it, type 'human' and we'll look into it.",
    "cancelled": "It was cancelled; any payment has been refunded.",
}


@dataclass
class Order:
    order_id: str
    status: str
    items: list[str] = field(default_factory=list)
    address: str = ""


CHANGEABLE = frozenset({"processing"})
"""Statuses in which an order can still be cancelled or sent elsewhere: once it has left the
warehouse the carrier has it."""


def demo_orders() -> dict[str, Order]:
    return {
        o.order_id: o
        for o in (
            Order("A1B2C3", "shipped", ["running shoes"]),
            Order("Z9Y8X7", "processing", ["rain jacket", "socks"]),
            Order("K4M5N6", "delivered", ["backpack"]),
            Order("Q2W3E4", "cancelled", ["water bottle"]),
        )
    }


class Shop:
    """In-memory shop state; ids are sequential so demos and tests read well. A write given an
    idempotency key it has already seen returns the first result and makes nothing new: the
    gateway runs a turn again when it could not save it, with the same keys."""

    REMEMBER = 10_000
    """How many idempotency keys are kept (oldest forgotten first)."""

    def __init__(self, orders: Mapping[str, Order] | None = None):
        self._initial = copy.deepcopy(dict(orders if orders is not None else demo_orders()))
        self.restore()

    def restore(self) -> None:
        """Back to the orders it was made with, no resets or tickets: each conversation of
        the story runner meets the same shop, whatever an earlier one cancelled."""
        self.orders = copy.deepcopy(self._initial)
        self.resets: list[dict[str, Any]] = []
        self.tickets: list[dict[str, Any]] = []
        self._reset_ids = itertools.count(1)
        self._ticket_ids = itertools.count(1)
        self._done: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _once(
        self, key: str | None, make: Callable[[], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        if key is not None and key in self._done:
            return self._done[key]
        result = make()
        if key is not None and result is not None:
            self._done[key] = result
            while len(self._done) > self.REMEMBER:
                self._done.popitem(last=False)
        return result

    def order(self, order_id: str) -> dict[str, Any] | None:
        found = self.orders.get(order_id.strip().upper())
        if found is None:
            return None
        return {**asdict(found), "found": True, "detail": DETAILS.get(found.status, "")}

    def password_reset(self, email: str, key: str | None = None) -> dict[str, Any]:
        if "@" not in email:
            raise ValueError("not an e-mail address")
        made = self._once(None if key is None else f"reset:{key}", lambda: self._reset(email))
        assert made is not None
        return made

    def _reset(self, email: str) -> dict[str, Any]:
        request = {"request_id": f"PR-{next(self._reset_ids):04d}", "email": email.lower()}
        self.resets.append(request)
        return request

    def cancel(self, order_id: str) -> dict[str, Any] | None:
        """Cancels an order that has not shipped. None: no such order; `cancelled` False (with
        the status) when it is too late. Cancelling twice answers as the first time did."""
        order = self.orders.get(order_id.strip().upper())
        if order is None:
            return None
        if order.status in CHANGEABLE:
            order.status = "cancelled"
            return {"order_id": order.order_id, "cancelled": True, "status": order.status}
        done = order.status == "cancelled"
        return {"order_id": order.order_id, "cancelled": done, "status": order.status}

    def change_address(self, order_id: str, address: str) -> dict[str, Any] | None:
        """Sends an order that has not shipped to `address`; `changed` False when too late."""
        order = self.orders.get(order_id.strip().upper())
        if order is None:
            return None
        if order.status not in CHANGEABLE:
            return {"order_id": order.order_id, "changed": False, "status": order.status}
        order.address = address.strip()[:300]
        return {"order_id": order.order_id, "changed": True, "address": order.address}

    def refund(self, order_id: str, reason: str, key: str | None = None) -> dict[str, Any] | None:
        return self._once(
            None if key is None else f"refund:{key}", lambda: self._refund(order_id, reason)
        )

    def _refund(self, order_id: str, reason: str) -> dict[str, Any] | None:
        order = self.orders.get(order_id.strip().upper())
        if order is None:
            return None
        ticket = {
            "ticket_id": f"RF-{next(self._ticket_ids):04d}",
            "order_id": order.order_id,
            "reason": reason[:500],
            "status": "open",
        }
        self.tickets.append(ticket)
        return ticket


RESET = SideEffect(
    target="email",
    repeated=(
        "A reset link was already sent to that address a few minutes ago. Please check your "
        "inbox and spam folder; you can ask for a new link in {wait}."
    ),
)
"""Sends an e-mail to whatever address a visitor types: one per address per period, or the
bot becomes a way to flood someone's inbox."""
REFUND = SideEffect(
    target="order_id",
    repeated=(
        "A refund request for that order was opened a few minutes ago, so I haven't opened "
        "another one. We'll e-mail you a return label within one business day."
    ),
)


def _arg(args: Mapping[str, Any], name: str) -> str:
    value = str(args.get(name) or "").strip()
    if not value:
        raise ActionError(f"missing argument {name!r}")
    return value


def register_shop(
    registry: ActionRegistry, shop: Shop | None = None, base_url: str | None = None
) -> None:
    """Register `shop.order_status`, `shop.password_reset`, `shop.refund`, `shop.cancel_order`
    and `shop.change_address`: against the HTTP
    service at `base_url` when given, else against `shop` in this process."""
    if base_url:
        _register_http(registry, base_url.rstrip("/"))
        return
    local = shop or Shop()

    async def order_status(args: Mapping[str, Any]) -> Any:
        order_id = _arg(args, "order_id").upper()
        return local.order(order_id) or {"found": False, "order_id": order_id}

    async def password_reset(args: Mapping[str, Any]) -> Any:
        try:
            return local.password_reset(_arg(args, "email"), idempotency_key())
        except ValueError as exc:
            raise ActionError(str(exc)) from exc

    async def refund(args: Mapping[str, Any]) -> Any:
        ticket = local.refund(_arg(args, "order_id"), _arg(args, "reason"), idempotency_key())
        if ticket is None:
            raise ActionError("no such order")
        return ticket

    async def cancel(args: Mapping[str, Any]) -> Any:
        done = local.cancel(_arg(args, "order_id"))
        if done is None:
            raise ActionError("no such order")
        return done

    async def change_address(args: Mapping[str, Any]) -> Any:
        done = local.change_address(_arg(args, "order_id"), _arg(args, "address"))
        if done is None:
            raise ActionError("no such order")
        return done

    policy = CallPolicy(timeout=2.0, retries=0, target="shop")
    registry.register("shop.cancel_order", cancel, policy)
    registry.register("shop.change_address", change_address, policy)
    registry.register("shop.order_status", order_status, policy)
    registry.register("shop.password_reset", password_reset, replace(policy, effect=RESET))
    registry.register("shop.refund", refund, replace(policy, effect=REFUND))


def _keyed() -> dict[str, str]:
    key = idempotency_key()
    return {} if key is None else {"Idempotency-Key": key}


def _register_http(registry: ActionRegistry, base: str) -> None:
    client = registry.client

    async def order_status(args: Mapping[str, Any]) -> Any:
        order_id = _arg(args, "order_id").upper()
        if not ORDER_ID.match(order_id):
            return {"found": False, "order_id": order_id}
        status, body = await client.request("GET", f"{base}/orders/{order_id}", ok=(404,))
        return body if status == 200 else {"found": False, "order_id": order_id}

    async def password_reset(args: Mapping[str, Any]) -> Any:
        json = {"email": _arg(args, "email")}
        reply = await client.request("POST", f"{base}/password-resets", headers=_keyed(), json=json)
        return reply[1]

    async def refund(args: Mapping[str, Any]) -> Any:
        json = {"order_id": _arg(args, "order_id"), "reason": _arg(args, "reason")}
        return (await client.request("POST", f"{base}/refunds", headers=_keyed(), json=json))[1]

    async def cancel(args: Mapping[str, Any]) -> Any:
        order_id = _arg(args, "order_id").upper()
        url = f"{base}/orders/{order_id}/cancel"
        return (await client.request("POST", url, headers=_keyed(), json={}))[1]

    async def change_address(args: Mapping[str, Any]) -> Any:
        order_id = _arg(args, "order_id").upper()
        json = {"address": _arg(args, "address")}
        url = f"{base}/orders/{order_id}/address"
        return (await client.request("POST", url, headers=_keyed(), json=json))[1]

    reads = CallPolicy(timeout=3.0, retries=2, cache_ttl=5.0, target="shop")
    writes = CallPolicy(timeout=5.0, retries=2, target="shop")
    registry.register("shop.order_status", order_status, reads)
    registry.register("shop.password_reset", password_reset, replace(writes, effect=RESET))
    registry.register("shop.refund", refund, replace(writes, effect=REFUND))
    registry.register("shop.cancel_order", cancel, writes)
    registry.register("shop.change_address", change_address, writes)
