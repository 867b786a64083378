"""Prometheus metrics of one process, in a registry of its own (no global state between apps)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "gateway_messages_in", "Events queued from a channel", ["channel"], registry=r
        )
        self.duplicates = Counter(
            "gateway_duplicates", "Events dropped as already queued", ["channel"], registry=r
        )
        self.rejected = Counter(
            "gateway_webhooks_rejected",
            "Webhook requests refused, by reason",
            ["channel", "reason"],
            registry=r,
        )
        self.messages_out = Counter(
            "gateway_messages_out", "Bot messages sent to a channel", ["channel"], registry=r
        )
        self.turns = Counter(
            "gateway_turns", "Turns handled, by outcome", ["channel", "outcome"], registry=r
        )
        self.errors = Counter("gateway_errors", "Errors, by stage", ["stage"], registry=r)
        self.turn_latency = Histogram(
            "gateway_turn_latency_seconds",
            "From an event's arrival to its last reply sent",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth", "Events queued and not yet acknowledged", registry=r
        )
        self.in_flight = Gauge("gateway_turns_in_flight", "Turns being handled now", registry=r)
        self._in: dict[str, Any] = {}

    def counted_in(self, channel: str) -> None:
        """`messages_in` for `channel`, with the labelled child cached (the webhook hot path)."""
        child = self._in.get(channel)
        if child is None:
            child = self._in[channel] = self.messages_in.labels(channel=channel)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
