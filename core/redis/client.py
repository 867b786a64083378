"""One place that opens Redis connections and turns their failures into the gateway's errors."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

OUTAGE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
"""What a Redis outage looks like from the client: refused, reset or timed-out connections."""


def connect(url: str, *, socket_timeout: float = 5.0) -> Redis:
    """A client with bounded waits, so an outage becomes an error within seconds, not a hang
    (the webhook must answer 503 well inside the platforms' own timeouts)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
        health_check_interval=15,
        decode_responses=False,
    )
