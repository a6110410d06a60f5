"""The server's Prometheus metrics; the names are torchyard.plans.rollout.analysis's, which the
rollout analysis and the example alert rules read."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from torchyard.plans.rollout.analysis import (
    BATCH_SIZE,
    ERRORS,
    IN_FLIGHT,
    LATENCY,
    LATENCY_BUCKETS,
    REQUESTS,
)

SERVER_ERRORS = ("500", "503")
"""The 5xx statuses the server answers with: the model failed, or it is overloaded."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ServerMetrics:
    """Counters of one serving process, in a registry of its own (several servers can
    live in one test process)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str, version: str) -> None:
        self.registry = CollectorRegistry()
        labels = ("model", "version")
        self._identity = (model, version)
        self._requests = Counter(
            REQUESTS, "Inference requests answered.", labels, registry=self.registry
        ).labels(*self._identity)
        self._errors = Counter(
            ERRORS,
            "Inference requests answered with an error, by HTTP status (5xx: the server's).",
            (*labels, "code"),
            registry=self.registry,
        )
        # The server's own errors exist at 0 from the start: a series that appears at 1
        # has no earlier sample to rise from, and rate() would miss the first failure.
        for code in SERVER_ERRORS:
            self._errors.labels(*self._identity, code)
        self._latency = Histogram(
            LATENCY,
            "Inference request latency in seconds, from the request's arrival (its whole "
            "body) to its answer, queueing and batching included.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(*self._identity)
        self._batch_size = Histogram(
            BATCH_SIZE,
            "Requests combined into one forward pass.",
            labels,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(*self._identity)
        self.in_flight = Gauge(
            IN_FLIGHT, "Inference requests being answered.", labels, registry=self.registry
        ).labels(*self._identity)

    def request(self, status: int, seconds: float | None) -> None:
        """One answered request; `seconds` is None for one the model was never asked
        about (refused as the client's mistake, or for overload): its latency says
        nothing of the version's."""
        self._requests.inc()
        if seconds is not None:
            self._latency.observe(seconds)
        if status >= 400:
            self._errors.labels(*self._identity, str(status)).inc()

    def batch(self, size: int) -> None:
        self._batch_size.observe(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
