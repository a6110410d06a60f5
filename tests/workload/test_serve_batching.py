"""Dynamic batching: concurrent requests share forward passes and get their own answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import torch

from tests.workload.serving import (
    FEATURES,
    infer_body,
    mlp_artifact,
    output_tensor,
    serving,
    serving_spec,
    small_mlp,
    text,
)
from torchyard.api.modelversion import AnalysisSpec
from torchyard.plans.rollout import Counters, analyse, measure

CONCURRENCY = 16


def _batch_sizes(exposition: str) -> dict[float, float]:
    """Cumulative counts of the batch-size histogram, by upper bound."""
    counts = {}
    for line in exposition.splitlines():
        if line.startswith("torchyard_inference_batch_size_bucket{"):
            bound = line.split('le="')[1].split('"')[0]
            counts[float(bound)] = float(line.rsplit(" ", 1)[1])
    return counts


def _concurrently(server, requests):
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(server.infer, requests))


@pytest.mark.parametrize(("max_batch_size", "batched"), [(8, True), (1, False)])
def test_concurrent_requests_get_the_same_answers_batched_or_not(tmp_path, max_batch_size, batched):
    torch.manual_seed(1)
    # Different row counts per request: the split back must follow each request's rows.
    inputs = [torch.randn(1 + i % 3, FEATURES) for i in range(CONCURRENCY * 2)]
    expected = [small_mlp()(rows) for rows in inputs]
    batching = {"maxBatchSize": max_batch_size, "maxQueueDelayMs": 50}
    spec = serving_spec(mlp_artifact(tmp_path), batching=batching)
    with serving(tmp_path, spec) as server:
        answers = _concurrently(server, [infer_body(rows) for rows in inputs])
        sizes = _batch_sizes(text(f"{server.url}/metrics"))
    for (status, response), want in zip(answers, expected, strict=True):
        assert status == 200
        assert torch.allclose(output_tensor(response), want, atol=1e-5)
    forward_passes = sizes[float("inf")]
    one_request_passes = sizes[1.0]
    if batched:
        assert one_request_passes < forward_passes  # some passes combined requests
        assert sizes[8.0] == forward_passes  # none combined more than maxBatchSize
    else:
        assert one_request_passes == forward_passes == len(inputs)


def test_fault_injection_fails_the_set_fraction_and_the_analysis_sees_it(tmp_path):
    spec = serving_spec(mlp_artifact(tmp_path))
    with serving(tmp_path, spec, fault_rate=0.25) as server:
        before = {"pod": Counters.parse(text(f"{server.url}/metrics"))}
        answers = _concurrently(server, [infer_body(torch.zeros(1, FEATURES))] * 40)
        after = {"pod": Counters.parse(text(f"{server.url}/metrics"))}
    failed = [response for status, response in answers if status == 500]
    assert len(failed) == 10
    assert all("injected fault" in response["error"] for response in failed)
    window = measure(before, after)
    assert (window.requests, window.errors) == (40, 10)
    limits = AnalysisSpec(max_error_rate=0.05, min_request_count=20)
    verdict = analyse(window, limits, datetime.now(UTC))
    assert verdict.verdict == "Fail" and "25.00% (10 of 40 requests)" in verdict.message
