"""Health analysis of a version under rollout: from its pods' metrics to a verdict. Pure.

The serving pods export cumulative Prometheus counters (torchyard.workloads.serve.metrics
uses the names below, so this module is the contract between the two). The controller
scrapes every pod of the candidate at the start and at the end of an analysis window;
`measure` turns the two scrapes into the window's figures and `analyse` into a verdict.

No data is never a pass: a window with fewer requests than `minRequestCount` (or none at
all, or metrics that could not be read) is Inconclusive (Flagger #883, #1581). Nor is
garbage: the pods run a tenant's image, so a value that is not a number, NaN, infinite,
negative or beyond 2^53, a malformed or overlong line of the metrics read here, buckets
that are not cumulative, or more server errors than requests make the pod `Unreadable`
and the window Inconclusive, with the reason in the message. Parsing is linear in the
text (no regular expression here can backtrack), so a hostile /metrics costs its size.

The analysis judges the version by the requests it was responsible for: a request refused
as the client's mistake (4xx: oversized, malformed, wrong types) is neither an error nor
a request here, so bad clients can neither roll back a healthy candidate nor dilute a
failing one's error rate. Overload (503 with Retry-After: the version could not take
the request) is a server error, like every 5xx: the analysis cannot tell a flood from a
version too slow for its share of the traffic, and rolling back is the safe side.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from torchyard.api.modelversion import AnalysisResult, AnalysisSpec
from torchyard.plans.rollout.quality import Compared, Quality

Verdict = Literal["Pass", "Fail", "Inconclusive"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)

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

MAX_VALUE = float(2**53)
"""Largest counter accepted: beyond it a float no longer counts by ones."""
MAX_BOUND_SECONDS = 1e6
"""Largest finite latency bucket bound accepted (the p99 must stay a finite number)."""
MAX_LINE = 1024
"""Longest line of a metric read here; the serving pods write about a hundred characters."""
_READ = (REQUESTS, ERRORS, f"{LATENCY}_bucket")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*+")
# Possessive quantifiers: no backtracking, so a malformed line costs its length once.
_LABEL = re.compile(r'\s*+([a-zA-Z_][a-zA-Z0-9_]*+)\s*+=\s*+"((?:[^"\\]|\\.)*+)"\s*+([,}])')
_CLOSE = re.compile(r"\s*+}")


class MetricsError(ValueError):
    """A serving pod's /metrics cannot be used; the message says why."""


@dataclass(frozen=True)
class Unreadable:
    """A pod whose metrics could not be used in a window, and why."""

    reason: str


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
        """Read the Prometheus text exposition of a serving pod's /metrics; raise
        MetricsError (a ValueError) on anything in the three metrics read that is not a
        plausible counter. Every other line is skipped unread."""
        requests = errors = client_errors = 0.0
        buckets: dict[float, float] = {}
        for line in text.splitlines():
            if not line.startswith(_READ):
                continue
            name, labels, value = sample(line)
            if name == REQUESTS:
                requests += value
            elif name == ERRORS:
                if labels.get("code", "").startswith("5"):
                    errors += value
                elif labels.get("code", "").startswith("4"):
                    client_errors += value
            elif name == f"{LATENCY}_bucket" and "le" in labels:
                bound = _bound(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
        ordered = tuple(sorted(buckets.items()))
        if any(later[1] < earlier[1] for earlier, later in itertools.pairwise(ordered)):
            raise MetricsError(f"{LATENCY} buckets are not cumulative")
        if max(requests, errors) > MAX_VALUE:
            raise MetricsError(f"counters sum beyond 2^53 ({requests:g} requests)")
        return cls(requests - client_errors, errors, ordered)

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


def read_counters(text: str) -> Counters | Unreadable:
    """A pod's counters, or why they cannot be used."""
    try:
        return Counters.parse(text)
    except MetricsError as error:
        return Unreadable(str(error))


def sample(line: str) -> tuple[str, dict[str, str], float]:
    """Name, labels and value of one sample line (timestamp ignored), checked."""
    if len(line) > MAX_LINE:
        raise MetricsError(f"a line over {MAX_LINE} characters: {_shown(line)}")
    name_match = _NAME.match(line)
    assert name_match is not None  # the line starts with one of _READ
    name, position = name_match.group(), name_match.end()
    labels: dict[str, str] = {}
    if line.startswith("{", position):
        closed = _CLOSE.match(line, position + 1)
        position = position + 1 if closed is None else closed.end()
        while closed is None:
            label = _LABEL.match(line, position)
            if label is None:
                raise MetricsError(f"malformed labels: {_shown(line)}")
            labels[label[1]] = label[2]
            position = label.end()
            closed = label if label[3] == "}" else _CLOSE.match(line, position)
            position = closed.end() if closed is not None else position
    rest = line[position:].split()
    if not line[position : position + 1].isspace() or len(rest) not in (1, 2):
        raise MetricsError(f"malformed sample: {_shown(line)}")
    return name, labels, _value(name, rest[0])


def _value(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise MetricsError(f"{name} is {_shown(raw)}, not a number") from None
    if not math.isfinite(value):
        raise MetricsError(f"{name} is {_shown(raw)}: not a finite number")
    if value < 0:
        raise MetricsError(f"{name} is {_shown(raw)}: counters are never negative")
    if value > MAX_VALUE:
        raise MetricsError(f"{name} is {_shown(raw)}: beyond 2^53, not a plausible count")
    return value


def _bound(raw: str) -> float:
    try:
        bound = float(raw)
    except ValueError:
        raise MetricsError(f"bucket bound le={_shown(raw)} is not a number") from None
    if bound == math.inf:
        return bound
    if not math.isfinite(bound) or not 0 <= bound <= MAX_BOUND_SECONDS:
        raise MetricsError(f"bucket bound le={_shown(raw)} is not a plausible latency")
    return bound


def _shown(text: str) -> str:
    """A pod's text, short and on one line, for a message."""
    clipped = text if len(text) <= 40 else text[:37] + "..."
    return repr("".join(c if c.isprintable() else "?" for c in clipped))


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
    problems: tuple[str, ...] = ()
    """Why the window's figures cannot be trusted (unreadable pods, inconsistent
    counters); any problem makes the analysis Inconclusive."""
    quality: Compared | None = None
    """The reference request's comparison (rollout.quality), made when an analysis is;
    None: not made."""

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


Scrape = Counters | Unreadable
"""What one pod's /metrics gave."""


def measure(before: Mapping[str, Scrape], after: Mapping[str, Scrape]) -> Measurement:
    """The window's figures from two scrapes of the same pods, keyed by pod name.

    A pod missing from `before` started inside the window; one missing from `after` is
    gone, and what it served since `before` is lost (it cannot be scraped any more). A
    pod unreadable at either end is a problem of the window, not a figure in it.
    """
    total = Counters()
    problems = []
    for pod, counters in sorted(after.items()):
        earlier = before.get(pod)
        if isinstance(counters, Unreadable):
            problems.append(f"pod {pod}: {counters.reason}")
        elif isinstance(earlier, Unreadable):
            problems.append(f"pod {pod} at the window's start: {earlier.reason}")
        else:
            total = total + counters.since(earlier)
    p99 = quantile(0.99, total.latency_buckets)
    if p99 is not None and not math.isfinite(p99 * 1000.0):
        problems.append("the latency histogram gives no finite p99")
        p99 = None
    if total.server_errors > total.requests:
        problems.append(
            f"{total.server_errors:.0f} server errors but {total.requests:.0f} requests: "
            "the counters contradict each other"
        )
    if total.requests > MAX_VALUE:
        problems.append("the pods' requests sum beyond 2^53")
    return Measurement(
        requests=round(min(total.requests, MAX_VALUE)),
        errors=round(min(total.server_errors, MAX_VALUE)),
        p99_latency_ms=None if p99 is None else p99 * 1000.0,
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class Analysis:
    """The verdict on one analysis window, with the figures it was reached from."""

    verdict: Verdict
    time: datetime
    measurement: Measurement | None
    message: str
    failed_on: tuple[str, ...] = ()
    """The checks that failed: errorRate, p99Latency, quality (a score below minScore),
    qualityUnanswered (no usable answer to the reference request); not kept in status."""
    awaits_quality: bool = False
    """Inconclusive only for want of the reference request's answers: the controller
    sends it and judges again (never sent when the verdict cannot depend on it)."""

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
            quality=_quality_result(measurement),
            message=self.message[:2048] or None,
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
                quality=None if parsed.quality is None else Quality.from_status(parsed.quality),
            )
        return cls(parsed.verdict, parsed.time, measurement, parsed.message or "")


def _quality_result(measurement: Measurement | None) -> Any:
    if measurement is None or not isinstance(measurement.quality, Quality):
        return None
    return measurement.quality.to_status()


def analyse(measurement: Measurement | None, spec: AnalysisSpec, now: datetime) -> Analysis:
    """Judge one window against the thresholds of `spec`."""
    if measurement is None:
        return Analysis(
            "Inconclusive", now, None, "no metrics could be read from the version's pods"
        )
    if measurement.problems:
        shown = list(measurement.problems[:3])
        if len(measurement.problems) > 3:
            shown.append(f"and {len(measurement.problems) - 3} more")
        return Analysis(
            "Inconclusive",
            now,
            measurement,
            "metrics that cannot be trusted, so no verdict (and never a pass): " + "; ".join(shown),
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
    failed_on = ["errorRate"] if rate > spec.max_error_rate else []
    if spec.max_p99_latency_ms is not None:
        p99 = measurement.p99_latency_ms
        if p99 is None:
            return Analysis(
                "Inconclusive", now, measurement, "no latency histogram in the pods' metrics"
            )
        slow = p99 > spec.max_p99_latency_ms
        failed_on += ["p99Latency"] if slow else []
        figures.append(
            f"p99 latency {p99:.1f} ms "
            + ("exceeds" if slow else "within")
            + f" the maximum {spec.max_p99_latency_ms:g} ms"
        )
    if spec.quality is not None:
        compared = measurement.quality
        if compared is None:
            message = "; ".join([*figures, "quality not compared yet"])
            return Analysis("Inconclusive", now, measurement, message, awaits_quality=True)
        if isinstance(compared, Quality):
            figures.append(compared.describe())
            if not compared.passed:
                failed_on.append("quality")
        else:
            figures.append(f"quality not compared: {compared.reason}")
            if compared.verdict == "Fail":
                # A failure of the version, but no score: not a QualityRegression.
                failed_on.append("qualityUnanswered")
            elif compared.verdict == "Inconclusive" and not failed_on:
                message = "; ".join(figures) + " (no verdict without it, and never a pass)"
                return Analysis("Inconclusive", now, measurement, message)
    verdict: Verdict = "Fail" if failed_on else "Pass"
    return Analysis(verdict, now, measurement, "; ".join(figures), tuple(failed_on))
