"""What a tenant's pod can answer the operator, and what the operator makes of it:
bounded reads (size, time, redirects, headers, compression), JSON depth, values that are
not plausible numbers in progress and in /metrics. Real sockets on loopback (the hostile
servers of tests/hostile.py); the parsers are pure. A hostile answer is refused with a
reason, or its bad values are left out; nothing raises, and no garbage passes or fails
an analysis.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.hostile import HostileServer
from torchyard.api.modelversion import AnalysisSpec, ModelVersionSpec
from torchyard.controllers import podhttp
from torchyard.controllers.podhttp import Refused
from torchyard.controllers.progress import LIMITS, fetch_progress, progress_status
from torchyard.controllers.scrape import scrape_pods
from torchyard.plans.rollout import (
    Counters,
    Observed,
    RolloutState,
    Unreadable,
    analyse,
    decide,
    measure,
    read_counters,
)
from torchyard.plans.rollout.analysis import MetricsError

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

# -- bounded reads, against real hostile servers ------------------------------------------


def _progress_from(behaviour: str) -> dict | Refused:
    async def read():
        with HostileServer(behaviour) as server:
            host, port = server.address
            async with podhttp.session(LIMITS, 4) as session:
                return await fetch_progress(session, host, port)

    return asyncio.run(read())


def _metrics_from(behaviour: str) -> dict:
    async def read():
        with HostileServer(behaviour) as server:
            host, port = server.address
            return await scrape_pods([("pod-a", host)], port)

    return asyncio.run(read())


# behaviour -> words of the reason the progress poller gives (and what the metrics
# scrape says: the same bounded read serves both).
REFUSED = {
    "huge-body": "over the 64 KiB limit (1073741824 bytes declared)",
    "endless-chunked": "over the 64 KiB limit (more sent)",
    "slow-body": "no complete answer within 2 s",
    "endless-headers": "not HTTP: Too many headers",
    "garbage": "not HTTP",
    "deep-json": "over the 64 KiB limit",
    "deep-json-small": "JSON nested deeper than 4 levels",
    "redirect-self": "answered HTTP 302 (a redirect, not followed)",
    "gzip-bomb": "not JSON",
    "not-json": "not JSON",
    "bad-values": "none of step, totalSteps, epoch, loss, samplesPerSecond, updateTime",
    "huge-numbers": "not JSON: Exceeds the limit (4300 digits)",
}


@pytest.mark.parametrize("behaviour", sorted(REFUSED))
def test_a_hostile_progress_answer_is_refused_with_a_reason(behaviour):
    answer = _progress_from(behaviour)
    assert isinstance(answer, Refused), answer
    assert REFUSED[behaviour] in answer.reason
    assert answer.answered  # the poller tells the user (an Event), not a silent skip
    assert answer.reason.isprintable() and len(answer.reason) <= 300


def test_a_pod_that_never_finishes_its_headers_counts_as_not_answering():
    answer = _progress_from("slow-headers")
    assert answer == Refused("no complete answer within 2 s", None, answered=False)


def test_a_healthy_pod_and_a_diverged_run_still_show_their_progress():
    assert _progress_from("normal") == {
        "progress": {"step": 1, "totalSteps": 1000, "epoch": 1, "loss": 0.5},
        "progressSummary": "1/1000",
    }
    # NaN loss, negative throughput: left out; the step count still shows.
    assert _progress_from("partly-good") == {
        "progress": {"step": 7, "totalSteps": 10},
        "progressSummary": "7/10",
    }


UNREADABLE_METRICS = {
    "huge-body": "over the 256 KiB limit",
    "endless-chunked": "over the 256 KiB limit",
    "slow-body": "no complete answer within 2 s",
    "endless-headers": "not HTTP",
    "garbage": "not HTTP",
    "redirect-self": "302",
    "gzip-bomb": "not UTF-8",
    "not-json": "not UTF-8",
    "bad-values": "torchyard_inference_requests_total is 'NaN': not a finite number",
    "huge-numbers": "is '1e300': beyond 2^53",
    "long-line": "a line over 1024 characters",
    "contradictory": "buckets are not cumulative",
}


@pytest.mark.parametrize("behaviour", sorted(UNREADABLE_METRICS))
def test_hostile_metrics_make_the_pod_unreadable_with_a_reason(behaviour):
    found = _metrics_from(behaviour)
    assert set(found) == {"pod-a"}
    assert isinstance(found["pod-a"], Unreadable), found
    assert UNREADABLE_METRICS[behaviour] in found["pod-a"].reason


def test_a_pod_that_does_not_answer_its_metrics_is_left_out():
    assert _metrics_from("slow-headers") == {}

    async def nobody():
        return await scrape_pods([("pod-a", "127.0.0.1")], port=_closed_port())

    assert asyncio.run(nobody()) == {}
    assert asyncio.run(scrape_pods([("pod-a", "not an ip")])) == {}


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- JSON depth and progress values (pure) -------------------------------------------------


def test_json_depth_is_counted_without_recursion_and_strings_do_not_count():
    assert podhttp.json_depth(b'{"a": [1, {"b": 2}]}', 10) == 3
    assert podhttp.json_depth(b'{"a": "[[[[{{{{", "b": "\\"[[["}', 10) == 1
    assert podhttp.json_depth(b'["\\\\", [[["x"]]]]', 10) == 4
    assert podhttp.json_depth(b"[[[[]]]]", 4) == 4
    assert podhttp.json_depth(b"[[[[[]]]]]", 4) == 5  # past the limit: stops counting
    assert podhttp.json_depth(b"{[]}", 4) == 2 and podhttp.json_depth(b"[{]}", 4) == 5
    assert podhttp.json_depth(b"[" * 1_000_000, 4) == 5  # unbalanced counts as too deep
    assert podhttp.json_depth(b'"' + b"\\" * 30_000, 4) == 0  # an unterminated string
    assert isinstance(podhttp.loads(b"[" * 100_000 + b"]" * 100_000), Refused)
    assert podhttp.loads(b'{"step": [1]}') == {"step": [1]}
    assert isinstance(podhttp.loads(b"\xff\xfe"), Refused)


def test_binary_is_called_not_json_even_when_its_bytes_hold_unpaired_brackets():
    compressed = b"\x1f\x8b\x08\x00[[{" + bytes(range(256))
    refused = podhttp.loads(compressed)
    assert isinstance(refused, Refused) and refused.reason.startswith("not JSON: it starts with")
    assert podhttp.loads(b"  \n") == Refused("not JSON: an empty body")
    assert math.isnan(podhttp.loads(b" NaN"))  # it parses; callers drop it


@pytest.mark.parametrize(
    ("report", "progress"),
    [
        ({"step": float("nan"), "loss": float("inf")}, {}),
        ({"step": -1, "totalSteps": 2**60, "epoch": 1.5}, {}),
        ({"step": True, "epoch": "3", "loss": [0.1], "samplesPerSecond": {"a": 1}}, {}),
        ({"loss": -2.5, "samplesPerSecond": 1e300}, {"loss": -2.5}),
        ({"updateTime": "2026-01-01T12:00:00.5+02:00"}, {"updateTime": "2026-01-01T10:00:00Z"}),
        ({"updateTime": "0001-01-01T00:00:00+14:00"}, {}),
        ({"updateTime": "yesterday"}, {}),
        ({"updateTime": "2026-01-01T12:00:00Z" + " " * 10_000}, {}),
    ],
)
def test_progress_values_that_are_not_plausible_are_left_out(report, progress):
    assert progress_status(report)["progress"] == progress
    json.dumps(progress_status(report), allow_nan=False)  # always writable to status


# -- metrics and analysis (pure) ----------------------------------------------------------

GOOD = """# HELP torchyard_inference_requests_total Inference requests answered.
torchyard_inference_requests_total{model="m",version="2"} 200.0 1700000000
torchyard_inference_errors_total{model="m",version="2",code="500"} 1.0
torchyard_inference_errors_total{model="m",version="2",code="400"} 9.0
torchyard_inference_request_duration_seconds_bucket{model="m",version="2",le="0.01"} 190.0
torchyard_inference_request_duration_seconds_bucket{le="+Inf",model="m",version="2",} 200.0
some_other_metric{weird="\\"}"} NaN
"""


def test_well_formed_metrics_still_parse():
    counters = Counters.parse(GOOD)
    # 200 answered, 9 of them the client's mistakes (400): the analysis judges 191
    assert (counters.requests, counters.server_errors) == (191.0, 1.0)
    assert counters.latency_buckets == ((0.01, 190.0), (float("inf"), 200.0))


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("torchyard_inference_requests_total NaN", "not a finite number"),
        ("torchyard_inference_requests_total +Inf", "not a finite number"),
        ("torchyard_inference_requests_total -3", "never negative"),
        ("torchyard_inference_requests_total 1e16", "beyond 2^53"),
        ("torchyard_inference_requests_total lots", "not a number"),
        ('torchyard_inference_errors_total{code="400"} NaN', "not a finite number"),
        ('torchyard_inference_requests_total{a="b} 1', "malformed labels"),
        ("torchyard_inference_requests_total{a=b} 1", "malformed labels"),
        ("torchyard_inference_requests_total{} 1 2 3", "malformed sample"),
        ("torchyard_inference_requests_total{}1", "malformed sample"),
        ('torchyard_inference_request_duration_seconds_bucket{le="NaN"} 1', "le='NaN'"),
        ('torchyard_inference_request_duration_seconds_bucket{le="1e300"} 1', "plausible"),
        ("torchyard_inference_requests_total " + "9" * 2000, "a line over 1024"),
    ],
)
def test_implausible_metrics_are_refused_with_the_reason(line, why):
    with pytest.raises(MetricsError) as refused:
        Counters.parse(GOOD + line + "\n")
    assert why in str(refused.value)
    assert read_counters(GOOD + line + "\n") == Unreadable(str(refused.value))


def test_hostile_metrics_text_costs_its_length_not_its_square():
    # Labels that never close and names that never end: linear to refuse or skip (a
    # backtracking parser would take hours on these megabytes).
    unclosed = 'torchyard_inference_requests_total{a="' + "x\\" * 500 + "\n"
    names = "torchyard_inference_requests_total{" + "a" * 1000 + "\n"
    skipped = "x" * 1_000_000 + "\n" + "{" * 1_000_000 + "\n"
    assert isinstance(read_counters(unclosed * 2000), Unreadable)
    assert isinstance(read_counters(names * 2000), Unreadable)
    assert read_counters(skipped) == Counters()


def test_a_window_with_an_unreadable_pod_is_inconclusive_and_says_why():
    good = Counters.parse(GOOD)
    before = {"pod-a": Counters(), "pod-b": Counters(), "pod-c": Unreadable("garbage at start")}
    after = {"pod-a": good, "pod-b": Unreadable("/metrics answered HTTP 302"), "pod-c": good}
    window = measure(before, after)
    assert window.requests == 191  # what could be read still shows (the 400s left out)
    assert window.problems == (
        "pod pod-b: /metrics answered HTTP 302",
        "pod pod-c at the window's start: garbage at start",
    )
    analysis = analyse(window, AnalysisSpec(), T0)
    assert analysis.verdict == "Inconclusive"
    assert "never a pass" in analysis.message and "HTTP 302" in analysis.message


def test_contradictory_counters_are_inconclusive_not_a_failure():
    before = {"pod-a": Counters(requests=100, server_errors=0)}
    after = {"pod-a": Counters(requests=150, server_errors=5000)}
    analysis = analyse(measure(before, after), AnalysisSpec(), T0)
    assert analysis.verdict == "Inconclusive"
    assert "contradict" in analysis.message


def test_garbage_never_promotes_nor_rolls_back_a_candidate():
    spec = ModelVersionSpec.model_validate(
        {
            "model": "m",
            "version": "2",
            "artifact": {"uri": "file:///models/m-2", "digest": "sha256:" + "a" * 64},
            "serving": {"replicas": 1},
            "rollout": {
                "steps": [{"setWeight": 50}],
                "analysis": {"intervalSeconds": 10, "failureLimit": 1},
            },
        }
    )
    garbage = {"pod-a": Unreadable("torchyard_inference_requests_total is 'NaN'")}
    window = measure({"pod-a": Counters()}, garbage)
    state = RolloutState(phase="Pending")
    for second in range(0, 300, 5):
        observed = Observed(
            now=T0 + timedelta(seconds=second),
            ready_replicas=1,
            measurement=window,
            previous_version="1",
        )
        decision = decide(spec, state, observed)
        state = decision.state
        assert decision.state.phase == "Progressing", decision.message
        assert decision.state.failures == 0
    assert state.analysis is not None and state.analysis.verdict == "Inconclusive"
    assert "is 'NaN'" in state.analysis.message


def test_the_serving_workloads_own_metrics_pass_every_check():
    from torchyard.workloads.serve.metrics import ServerMetrics

    server = ServerMetrics("digits", "2")
    for _ in range(50):
        server.request(200, 0.004)
    server.request(500, 0.2)
    server.request(400, 0.01)  # a client's mistake: not a server error
    server.batch(3)
    counters = read_counters(server.render().decode())
    assert isinstance(counters, Counters)
    assert (counters.requests, counters.server_errors) == (51.0, 1.0)  # the 400 left out
    assert counters.latency_buckets[-1] == (float("inf"), 52.0)
