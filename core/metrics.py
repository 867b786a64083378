"""Prometheus metrics of one process, in a registry of its own (no global state between apps)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The process's Prometheus metrics in one registry of its own; every part gets the same
    instance from `gateway/`, which serves it at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = InboundCounts()
        r.register(self.messages_in)
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
            "gateway_turns",
            "Turns handled, by outcome (core.outcomes) and intent (known ones, else other)",
            ["channel", "outcome", "intent"],
            registry=r,
        )
        self.edits = Counter(
            "gateway_edits",
            "Edits and deletions of customer messages, by what the turn did with them"
            " (replaced, withdrawn, recorded, as_new)",
            ["channel", "kind", "fate"],
            registry=r,
        )
        self.known_intents: Callable[[], Collection[str]] = frozenset
        """The intents a turn's `intent` label may name; the gateway points it at the live
        flows' intents (none known: every intent counts as `other`)."""
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

    def counted_in(self, channel: str) -> None:
        """One more event queued from `channel` (the web chat, the SMTP listener; a webhook
        route adds to `messages_in.counts` itself, its channel's count set to 0 when the route
        is made, so the series shows from start-up)."""
        counts = self.messages_in.counts
        counts[channel] = counts.get(channel, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


class InboundCounts:
    """`gateway_messages_in_total{channel}`, kept as plain counts and turned into a metric when
    scraped: the webhook hot path adds one to an int instead of taking a prometheus_client
    counter's lock. Written and scraped on the event loop's thread only."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "gateway_messages_in", "Events queued from a channel", labels=["channel"]
        )
        for channel, n in sorted(self.counts.items()):
            family.add_metric([channel], n)
        yield family
