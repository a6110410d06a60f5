"""The router's Prometheus metrics: what clients were answered, by version, and how long
the router and the version took. The served share of a version is its requests over
all requests (what status.weight reports)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

ROUTED = "torchyard_router_requests_total"
ROUTED_LATENCY = "torchyard_router_request_duration_seconds"
NO_ROUTE = "torchyard_router_unroutable_total"
RETRIES = "torchyard_router_retries_total"
# From 0.5 ms: the router's own cost is what its latency histogram is for.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RouterMetrics:
    """Counters of one router process, in a registry of its own (several routers can
    live in one test process)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str) -> None:
        self.model = model
        self.registry = CollectorRegistry()
        self._routed = Counter(
            ROUTED,
            "Requests the router answered, by the version that answered and its status.",
            ("model", "version", "code"),
            registry=self.registry,
        )
        self._latency = Histogram(
            ROUTED_LATENCY,
            "Seconds from a request's arrival at the router to its answer, by version.",
            ("model", "version"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._unroutable = Counter(
            NO_ROUTE,
            "Requests answered 503 because no version had a weight and a ready endpoint.",
            ("model",),
            registry=self.registry,
        ).labels(model)
        self._retries = Counter(
            RETRIES,
            "Requests sent again to another endpoint after a connection failed.",
            ("model", "version"),
            registry=self.registry,
        )

    def routed(self, version: str, status: int, seconds: float) -> None:
        self._routed.labels(self.model, version, str(status)).inc()
        self._latency.labels(self.model, version).observe(seconds)

    def unroutable(self) -> None:
        self._unroutable.inc()

    def retried(self, version: str) -> None:
        self._retries.labels(self.model, version).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
