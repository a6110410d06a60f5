"""The Open Inference Protocol v2 REST API of a real server on a real model."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import torch

from tests.workload.serving import (
    CLASSES,
    FEATURES,
    call,
    infer_body,
    mlp_artifact,
    output_tensor,
    serving,
    serving_spec,
    small_mlp,
    text,
)
from torchyard.plans.rollout import Counters
from torchyard.workloads.serve.server import VERSION_HEADER


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serve")
    with serving(directory, serving_spec(mlp_artifact(directory))) as running:
        yield running


def test_health_and_server_metadata(server):
    assert call("GET", f"{server.url}/v2/health/live") == (200, {"live": True})
    assert call("GET", f"{server.url}/v2/health/ready") == (200, {"ready": True})
    assert call("GET", f"{server.model_url}/ready") == (200, {"name": "digits", "ready": True})
    assert call("GET", f"{server.model_url}/versions/2/ready")[0] == 200
    status, metadata = call("GET", f"{server.url}/v2")
    assert status == 200 and metadata["name"] == "torchyard"
    assert set(metadata) == {"name", "version", "extensions"}


def test_model_metadata_describes_inputs_and_outputs(server):
    expected = {
        "name": "digits",
        "versions": ["2"],
        "platform": "pytorch",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, FEATURES]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, CLASSES]}],
    }
    assert call("GET", server.model_url) == (200, expected)
    assert call("GET", f"{server.model_url}/versions/2") == (200, expected)


def test_infer_returns_the_models_outputs(server):
    rows = torch.randn(3, FEATURES)
    status, response = server.infer(infer_body(rows, id="req-7"))
    assert status == 200
    assert response["model_name"] == "digits" and response["model_version"] == "2"
    assert response["id"] == "req-7"
    [output] = response["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("output", "FP32", [3, CLASSES])
    assert torch.allclose(output_tensor(response), small_mlp()(rows), atol=1e-5)


def test_nested_data_and_a_versioned_url_give_the_same_answer(server):
    rows = torch.randn(2, FEATURES)
    flat = server.infer(infer_body(rows))[1]
    nested = {
        "inputs": [
            {"name": "input", "shape": [2, FEATURES], "datatype": "FP32", "data": rows.tolist()}
        ],
        "outputs": [{"name": "output"}],
    }
    status, response = call("POST", f"{server.model_url}/versions/2/infer", nested)
    assert status == 200
    assert torch.allclose(output_tensor(response), output_tensor(flat), atol=1e-6)
    assert "id" not in response


def _input(**changes):
    tensor = {"name": "input", "shape": [1, FEATURES], "datatype": "FP32", "data": [0.5] * 8}
    return {"inputs": [{**tensor, **changes}]}


BAD_REQUESTS = [
    ("wrong shape", "/infer", _input(shape=[1, 5], data=[0.0] * 5), 400, "shape [1, 5]"),
    ("wrong datatype", "/infer", _input(datatype="INT64", data=[1] * 8), 400, "expects FP32"),
    ("unknown datatype", "/infer", _input(datatype="FLOAT"), 400, "unknown datatype"),
    ("too few values", "/infer", _input(data=[0.0] * 7), 400, "7 values"),
    ("ragged data", "/infer", _input(data=[[0.0] * 4, [0.0] * 3]), 400, "do not fit FP32"),
    ("strings as numbers", "/infer", _input(data=["a"] * 8), 400, "do not fit FP32"),
    ("unknown input", "/infer", _input(name="pixels"), 400, "unexpected input 'pixels'"),
    ("no inputs", "/infer", {"inputs": []}, 400, "'inputs'"),
    ("unknown output", "/infer", {**_input(), "outputs": [{"name": "x"}]}, 400, "unknown output"),
    ("not JSON", "/infer", b"{not json", 400, "not JSON"),
    ("unknown version", "/versions/9/infer", _input(), 404, "no version '9'"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_the_protocol_error_and_the_server_keeps_serving(
    server, path, body, status, words
):
    got_status, response = call("POST", f"{server.model_url}{path}", body)
    assert got_status == status
    assert set(response) == {"error"} and words in response["error"]
    assert server.infer(infer_body(torch.zeros(1, FEATURES)))[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v2/models/resnet/infer", 404),
        ("GET", "/v2/models/resnet", 404),
        ("GET", "/v2/models/resnet/ready", 404),
        ("GET", "/v2/nowhere", 404),
        ("GET", "/v2/models/digits/infer", 405),
    ],
)
def test_unknown_models_and_routes_are_protocol_errors(server, method, path, status):
    got_status, response = call(method, f"{server.url}{path}", {} if method == "POST" else None)
    assert got_status == status and isinstance(response["error"], str)


def test_metrics_count_requests_errors_latency_and_batches(server):
    before = Counters.parse(text(f"{server.url}/metrics"))
    # The server's own errors are series from the start, at 0, so that rate() and
    # increase() see the first one (a series born at 1 has nothing to rise from).
    for code in ("500", "503"):
        zero = f'torchyard_inference_errors_total{{code="{code}",model="digits",version="2"}} 0.0'
        assert zero in text(f"{server.url}/metrics")
    for _ in range(4):
        server.infer(infer_body(torch.zeros(1, FEATURES)))
    server.infer(_input(shape=[1, 2]))  # a client error
    exposition = text(f"{server.url}/metrics")
    for family in (
        "torchyard_inference_requests_total",
        "torchyard_inference_errors_total",
        "torchyard_inference_request_duration_seconds_bucket",
        "torchyard_inference_batch_size_bucket",
    ):
        assert f"{family}{{" in exposition
    assert 'code="400"' in exposition
    window = Counters.parse(exposition).since(before)
    # What the rollout analysis reads: the 4 requests the version answered, none of them
    # a server fault; the client's mistake is neither a request nor an error there, and
    # its latency is not the version's.
    assert (window.requests, window.server_errors) == (4, 0)
    assert window.latency_buckets[-1][1] == 4


def test_every_answer_names_the_version_that_gave_it(server):
    with urllib.request.urlopen(f"{server.url}/v2/health/ready") as response:
        assert response.headers[VERSION_HEADER] == "2"
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{server.url}/v2/models/resnet")
    assert error.value.code == 404
    assert error.value.headers[VERSION_HEADER] == "2"
