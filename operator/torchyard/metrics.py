"""The operator's Prometheus metrics: reconciles per kind, and ModelVersion health.

Served on the port given to `torchyard operator --metrics-port` (8081 in manifests/).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "torchyard_reconcile_total", "Reconciles by kind and outcome", ["kind", "outcome"]
)
RECONCILE_SECONDS = Histogram(
    "torchyard_reconcile_duration_seconds",
    "Time to reconcile one object",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
VERSION_WEIGHT = Gauge(
    "torchyard_modelversion_weight_percent",
    "Share of the model's inference requests a version served (status.weight)",
    ["namespace", "model", "version"],
)
VERSION_DESIRED_WEIGHT = Gauge(
    "torchyard_modelversion_desired_weight_percent",
    "Share of the model's traffic a version is meant to get (status.desiredWeight)",
    ["namespace", "model", "version"],
)
VERSION_HEALTHY = Gauge(
    "torchyard_modelversion_healthy",
    "1 if the version's last analysis passed or it serves without a rollout, else 0",
    ["namespace", "model", "version"],
)
VERSION_READY = Gauge(
    "torchyard_modelversion_ready_replicas",
    "Ready serving pods of a version (status.readyReplicas)",
    ["namespace", "model", "version"],
)
ANALYSES = Counter(
    "torchyard_modelversion_analysis_total",
    "Rollout analyses by verdict",
    ["namespace", "model", "version", "verdict"],
)
ROLLBACKS = Counter(
    "torchyard_modelversion_rollbacks_total",
    "Rollbacks, automatic or requested",
    ["namespace", "model", "reason"],
)
BACKGROUND_RESTARTS = Counter(
    "torchyard_background_task_restarts_total",
    "Restarts of the operator's own background tasks by its supervisor",
    ["task"],
)


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    """Count and time one reconcile; an exception counts as an error and propagates."""
    began = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "success").inc()
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - began)


def serve(port: int) -> None:
    start_http_server(port, addr="0.0.0.0")
