"""The one error root of the gateway, and the errors the core itself raises."""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class QueueUnavailable(GatewayError):
    """The queue cannot take the event durably right now: the webhook answers 503 so the platform
    retries."""


class StoreUnavailable(GatewayError):
    """The session store cannot be reached."""
