"""Health analysis of a version under rollout: from its pods' metrics to a verdict. Pure.

The serving pods export cumulative Prometheus counters (torchyard.workloads.serve.metrics
uses the names below, so this module is the contract between the two). The controller
scrapes every pod of the candidate at the start and at the end of an analysis window;
`measure` turns the two scrapes into the window's figures and `analyse` into a verdict.

No data is never a pass: a window with fewer requests than `minRequestCount` (or none at
all, or metrics that could not be read) is Inconclusive (Flagger #883, #1581).

The analysis judges the version by the requests it was responsible for: a request refused
as the client's mistake (4xx: oversized, malformed, wrong types) is neither an error nor
a request here, so bad clients can neither roll back a healthy candidate nor dilute a
failing one's error rate. Overload (503 with Retry-After: the version could not take
the request) is a server error, like every 5xx: the analysis cannot tell a flood from a
version too slow for its share of the traffic, and rolling back is the safe side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from torchyard.api.modelversion import AnalysisResult, AnalysisSpec

Verdict = Literal["Pass", "Fail", "Inconclusive"]

# Metric names the serving pods export; analysis and alert rules read the same ones.
REQUESTS = "torchyard_inference_requests_total"
"""Counter of inference requests answered, labels model and version."""
ERRORS = "torchyard_inference_errors_total"
"""Counter of inference requests answered with an error, labels model, version, code."""
LATENCY = "torchyard_inference_request_duration_seconds"
"""Histogram of inference request latency (queueing and batching included)."""
BATCH_SIZE = "torchyard_inference_batch_size"
"""Histogram of requests combined into one forward pass."""
IN_FLIGHT = "torchyard_inference_requests_in_flight"
"""Gauge of inference requests being answered (not analysed: for autoscaling, drains)."""
# Latency bucket bounds in seconds: fine below 100 ms where CPU models answer, so a
# p99 interpolated from them is close to the real one.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Counters:
    """The cumulative serving counters of one pod (or a sum or difference of them)."""

    requests: float = 0.0
    """Requests answered, less those refused as the client's mistake (4xx)."""
    server_errors: float = 0.0
    """Requests answered 5xx: the server's fault. 4xx are the client's and not counted."""
    latency_buckets: tuple[tuple[float, float], ...] = field(default=())
    """(upper bound in seconds, cumulative count), ascending, +Inf last."""

    @classmethod
    def parse(cls, text: str) -> Counters:
        """Read the Prometheus text exposition of a serving pod's /metrics."""
        requests = errors = client_errors = 0.0
        buckets: dict[float, float] = {}
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, raw_labels, raw_value = match.groups()
            labels = dict(_LABEL.findall(raw_labels or ""))
            value = float(raw_value)
            if name == REQUESTS:
                requests += value
            elif name == ERRORS and labels.get("code", "").startswith("5"):
                errors += value
            elif name == ERRORS and labels.get("code", "").startswith("4"):
                client_errors += value
            elif name == f"{LATENCY}_bucket" and "le" in labels:
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
        return cls(requests - client_errors, errors, tuple(sorted(buckets.items())))

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.requests + other.requests,
            self.server_errors + other.server_errors,
            _merge(self.latency_buckets, other.latency_buckets, 1.0),
        )

    def since(self, earlier: Counters | None) -> Counters:
        """What happened between `earlier` and now. A counter that went down means the
        pod restarted: then everything it counts happened in the window (Prometheus's
        rule for counter resets)."""
        if earlier is None or _went_down(earlier, self):
            return self
        return Counters(
            self.requests - earlier.requests,
            self.server_errors - earlier.server_errors,
            _merge(self.latency_buckets, earlier.latency_buckets, -1.0),
        )


def _went_down(earlier: Counters, later: Counters) -> bool:
    before = dict(earlier.latency_buckets)
    return (
        later.requests < earlier.requests
        or later.server_errors < earlier.server_errors
        or any(count < before.get(bound, 0.0) for bound, count in later.latency_buckets)
    )


def _merge(
    first: tuple[tuple[float, float], ...], second: tuple[tuple[float, float], ...], sign: float
) -> tuple[tuple[float, float], ...]:
    merged = dict(first)
    for bound, count in second:
        merged[bound] = merged.get(bound, 0.0) + sign * count
    return tuple(sorted(merged.items()))


def quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated linearly inside the bucket
    it falls in (as PromQL's histogram_quantile does); None when it is empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                # Past the largest finite bound nothing is known but that it is larger.
                return lower_bound
            inside = count - lower_count
            fraction = (rank - lower_count) / inside if inside > 0 else 1.0
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(frozen=True)
class Measurement:
    """What a version's pods did in one analysis window, summed over its pods."""

    requests: int
    errors: int
    """Requests answered with a server error (5xx)."""
    p99_latency_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def measure(before: Mapping[str, Counters], after: Mapping[str, Counters]) -> Measurement:
    """The window's figures from two scrapes of the same pods, keyed by pod name.

    A pod missing from `before` started inside the window; one missing from `after` is
    gone, and what it served since `before` is lost (it cannot be scraped any more).
    """
    total = Counters()
    for pod, counters in after.items():
        total = total + counters.since(before.get(pod))
    p99 = quantile(0.99, total.latency_buckets)
    return Measurement(
        requests=round(total.requests),
        errors=round(total.server_errors),
        p99_latency_ms=None if p99 is None else p99 * 1000.0,
    )


@dataclass(frozen=True)
class Analysis:
    """The verdict on one analysis window, with the figures it was reached from."""

    verdict: Verdict
    time: datetime
    measurement: Measurement | None
    message: str

    def to_status(self, failures: int) -> dict[str, Any]:
        """status.analysis (an AnalysisResult) in its wire form."""
        measurement = self.measurement
        return AnalysisResult(
            time=self.time,
            verdict=self.verdict,
            failures=failures,
            requests=None if measurement is None else measurement.requests,
            error_rate=None if measurement is None else measurement.error_rate,
            p99_latency_ms=None if measurement is None else measurement.p99_latency_ms,
        ).to_k8s()

    @classmethod
    def from_status(cls, result: Mapping[str, Any] | None) -> Analysis | None:
        parsed = AnalysisResult.model_validate(result or {})
        if parsed.time is None or parsed.verdict is None:
            return None
        measurement = None
        if parsed.requests is not None:
            measurement = Measurement(
                requests=parsed.requests,
                errors=round((parsed.error_rate or 0.0) * parsed.requests),
                p99_latency_ms=parsed.p99_latency_ms,
            )
        return cls(parsed.verdict, parsed.time, measurement, "")


def analyse(measurement: Measurement | None, spec: AnalysisSpec, now: datetime) -> Analysis:
    """Judge one window against the thresholds of `spec`."""
    if measurement is None:
        return Analysis(
            "Inconclusive", now, None, "no metrics could be read from the version's pods"
        )
    minimum = max(spec.min_request_count, 1)
    if measurement.requests < minimum:
        return Analysis(
            "Inconclusive",
            now,
            measurement,
            f"{measurement.requests} requests in the window, fewer than the "
            f"{minimum} needed (minRequestCount): no verdict, and never a pass",
        )
    rate = measurement.error_rate or 0.0
    figures = [
        f"error rate {rate:.2%} ({measurement.errors} of {measurement.requests} requests) "
        + ("exceeds" if rate > spec.max_error_rate else "within")
        + f" the maximum {spec.max_error_rate:.2%}"
    ]
    failed = rate > spec.max_error_rate
    if spec.max_p99_latency_ms is not None:
        p99 = measurement.p99_latency_ms
        if p99 is None:
            return Analysis(
                "Inconclusive", now, measurement, "no latency histogram in the pods' metrics"
            )
        slow = p99 > spec.max_p99_latency_ms
        failed = failed or slow
        figures.append(
            f"p99 latency {p99:.1f} ms "
            + ("exceeds" if slow else "within")
            + f" the maximum {spec.max_p99_latency_ms:g} ms"
        )
    return Analysis("Fail" if failed else "Pass", now, measurement, "; ".join(figures))
