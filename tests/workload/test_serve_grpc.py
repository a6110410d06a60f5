"""The Open Inference Protocol's gRPC binding of the real serving process: Triton's and
KServe's clients, unmodified and with their defaults (each in a process of its own:
tests/workload/grpc_clients.py says why), hand-built messages for what they never send,
refusals with the HTTP binding's messages, metrics and the drain. Every answer must equal
what the model computes and what the HTTP binding's JSON form answers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
import torch

from tests.workload.grpc_clients import (
    ClientProcess,
    kserve_infer,
    triton_health,
    triton_infer,
)
from tests.workload.serving import (
    FEATURES,
    call,
    eventually,
    free_port,
    in_flight,
    infer_body,
    mlp_artifact,
    output_tensor,
    refuses_connections,
    serving,
    serving_spec,
    small_mlp,
    text,
    tiny_text_artifact,
    wait_until_ready,
)
from torchyard.oip import open_inference_pb2 as pb
from torchyard.oip import open_inference_pb2_grpc as pb_grpc
from torchyard.oip.binary import decode_bytes
from torchyard.plans.rollout import Counters
from torchyard.workloads.serve.app import main
from torchyard.workloads.serve.grpc import status_code
from torchyard.workloads.serve.limits import Limits

SENTENCES = ["a first sentence", "ünïcödé text, and a longer second sentence", "x"]
MAX_BODY = 1 << 20


@pytest.fixture(scope="module")
def mlp_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("grpc")
    # A small body limit, so that an oversize message is cheap to send.
    limits = Limits(max_body_bytes=MAX_BODY, max_buffered_bytes=4 * MAX_BODY)
    with serving(directory, serving_spec(mlp_artifact(directory)), limits=limits) as server:
        yield server


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("grpc-text")
    spec = serving_spec(tiny_text_artifact(directory), format="huggingface")
    with serving(directory, spec) as server:
        yield server


@pytest.fixture(scope="module")
def triton():
    process = ClientProcess()
    yield process
    process.close()


@pytest.fixture(scope="module")
def kserve():
    process = ClientProcess()
    yield process
    process.close()


def stub(server) -> pb_grpc.GRPCInferenceServiceStub:
    return pb_grpc.GRPCInferenceServiceStub(server.grpc_channel())


def rows(count: int = 4) -> np.ndarray:
    return torch.randn(count, FEATURES, generator=torch.Generator().manual_seed(11)).numpy()


def expected(batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return small_mlp()(torch.from_numpy(batch)).numpy()


def over_json(server, batch: np.ndarray) -> np.ndarray:
    """The HTTP binding's JSON answer for the same rows."""
    status, answer = server.infer(infer_body(torch.from_numpy(batch)))
    assert status == 200, answer
    return output_tensor(answer).numpy()


def raw_request(batch: np.ndarray, model: str = "digits", **fields) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input", datatype="FP32", shape=list(batch.shape)
    )
    return pb.ModelInferRequest(
        model_name=model,
        inputs=[tensor],
        raw_input_contents=[batch.astype("<f4").tobytes()],
        **fields,
    )


def refusal(rpc, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as refused:
        rpc(request, timeout=60)
    return refused.value.code(), refused.value.details()


# -- the clients, with their defaults ---------------------------------------------------


def test_tritonclient_grpc_with_its_defaults(mlp_server, triton):
    health = triton.call(triton_health, mlp_server.grpc_target, "digits")
    assert health["live"] and health["ready"] and health["model_ready"]
    assert health["server"]["name"] == "torchyard"
    assert "binary_tensor_data" in health["server"]["extensions"]
    model = health["model"]
    assert (model["name"], model["versions"], model["platform"]) == ("digits", ["2"], "pytorch")
    # int64 in protobuf's JSON mapping is a string: tritonclient's as_json shows "-1".
    assert model["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": ["-1", str(FEATURES)]}
    ]

    batch = rows()
    answer = triton.call(
        triton_infer, mlp_server.grpc_target, "digits", {"input": ("FP32", batch)}, "r-1"
    )
    assert (answer["id"], answer["model_version"]) == ("r-1", "2")
    output = answer["outputs"]["output"]
    assert output.shape == (4, 3) and output.dtype == np.float32
    np.testing.assert_allclose(output, expected(batch), atol=1e-5)
    np.testing.assert_array_equal(output, over_json(mlp_server, batch))


def test_bytes_inputs_from_tritonclient_give_the_json_forms_embeddings(text_server, triton):
    texts = np.array([sentence.encode() for sentence in SENTENCES], dtype=np.object_)
    answer = triton.call(
        triton_infer, text_server.grpc_target, "digits", {"text": ("BYTES", texts)}
    )
    embeddings = answer["outputs"]["embedding"]
    assert embeddings.shape == (len(SENTENCES), 32)
    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": SENTENCES}]}
    status, over_http = call("POST", f"{text_server.model_url}/infer", body)
    assert status == 200
    np.testing.assert_allclose(output_tensor(over_http, "embedding").numpy(), embeddings, atol=1e-6)


def test_tritonclient_sees_the_servers_refusals(mlp_server, triton):
    wrong = np.zeros((2, FEATURES + 1), dtype=np.float32)
    code, message = triton.call(
        triton_infer, mlp_server.grpc_target, "digits", {"input": ("FP32", wrong)}
    )
    assert code == "INVALID_ARGUMENT"
    assert f"shape [2, {FEATURES + 1}] but the model expects [-1, {FEATURES}]" in message
    code, message = triton.call(
        triton_infer, mlp_server.grpc_target, "nope", {"input": ("FP32", rows())}
    )
    assert (code, message) == ("NOT_FOUND", "unknown model 'nope'; this server serves 'digits'")


@pytest.mark.parametrize("typed", [False, True], ids=["raw", "typed-contents"])
def test_kserve_grpc_client_with_its_defaults(mlp_server, kserve, typed):
    batch = rows(5)
    outputs = kserve.call(
        kserve_infer, mlp_server.grpc_target, "digits", "input", batch, typed=typed
    )
    [(name, output)] = outputs
    assert name == "output"
    np.testing.assert_allclose(output.reshape(5, 3), expected(batch), atol=1e-5)
    np.testing.assert_array_equal(output.reshape(5, 3), over_json(mlp_server, batch))
    code, message = kserve.call(kserve_infer, mlp_server.grpc_target, "nope", "input", batch)
    assert (code, message) == ("NOT_FOUND", "unknown model 'nope'; this server serves 'digits'")


# -- messages the clients do not send ---------------------------------------------------


def test_typed_contents_give_the_same_answer_as_raw_ones_and_as_json(mlp_server):
    batch = rows(3)
    request = pb.ModelInferRequest(
        model_name="digits",
        model_version="2",
        id="typed",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="input",
                datatype="FP32",
                shape=[3, FEATURES],
                contents=pb.InferTensorContents(fp32_contents=batch.ravel().tolist()),
            )
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="output")],
    )
    response, call_ = stub(mlp_server).ModelInfer.with_call(request, timeout=60)
    assert (response.model_name, response.model_version, response.id) == ("digits", "2", "typed")
    [output] = response.outputs
    assert (output.name, output.datatype, list(output.shape)) == ("output", "FP32", [3, 3])
    assert not output.HasField("contents"), "every output raw, as Triton answers"
    values = np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(3, 3)
    np.testing.assert_array_equal(values, over_json(mlp_server, batch))
    raw = stub(mlp_server).ModelInfer(raw_request(batch), timeout=60)
    assert raw.raw_output_contents[0] == response.raw_output_contents[0]
    assert ("x-model-version", "2") in call_.initial_metadata()


def test_typed_bytes_contents_are_read_as_utf8(text_server):
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[len(SENTENCES)],
        contents=pb.InferTensorContents(bytes_contents=[s.encode() for s in SENTENCES]),
    )
    request = pb.ModelInferRequest(model_name="digits", inputs=[tensor])
    response = stub(text_server).ModelInfer(request, timeout=60)
    embeddings = np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(3, 32)
    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": SENTENCES}]}
    status, over_http = call("POST", f"{text_server.model_url}/infer", body)
    assert status == 200
    np.testing.assert_allclose(output_tensor(over_http, "embedding").numpy(), embeddings, atol=0)

    request.inputs[0].contents.bytes_contents[1] = b"\xff\xfe"
    code, message = refusal(stub(text_server).ModelInfer, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'text': a BYTES element is not UTF-8" in message


def test_bytes_outputs_are_raw_in_the_binary_layout():
    """A BYTES output (a classifier's label) in raw_output_contents: length-prefixed."""
    from torchyard.workloads.serve.grpc import response_message
    from torchyard.workloads.serve.protocol import InferRequest

    request = InferRequest(id=None, inputs={}, rows=2, outputs=None)
    response = response_message(
        "m", "1", request, {"label": ["cat", "ünï"], "p": torch.tensor([[0.5], [1.0]])}
    )
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("label", "BYTES", [2]),
        ("p", "FP32", [2, 1]),
    ]
    assert decode_bytes(response.raw_output_contents[0], 2, "label") == [b"cat", "ünï".encode()]
    assert response.raw_output_contents[1] == np.array([0.5, 1.0], "<f4").tobytes()
    assert response.id == ""


# -- refusals ---------------------------------------------------------------------------


def _typed(datatype: str, **contents) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(
        name="input",
        datatype=datatype,
        shape=[1, FEATURES],
        contents=pb.InferTensorContents(**contents),
    )


def _bad_requests() -> list[tuple[str, pb.ModelInferRequest, grpc.StatusCode, str]]:
    batch = rows(2)
    short = raw_request(batch)
    short.raw_input_contents[0] = short.raw_input_contents[0][:-4]
    mixed = raw_request(batch)
    mixed.inputs[0].contents.fp32_contents.extend([0.0] * 16)
    twice = raw_request(batch)
    twice.raw_input_contents.append(b"\0" * 64)
    wrong_field = pb.ModelInferRequest(
        model_name="digits", inputs=[_typed("FP32", int_contents=[1] * FEATURES)]
    )
    half = pb.ModelInferRequest(
        model_name="digits", inputs=[_typed("FP16", fp32_contents=[1.0] * FEATURES)]
    )
    shape = raw_request(np.zeros((2, FEATURES + 1), np.float32))
    version = raw_request(batch, model_version="7")
    output = raw_request(batch, outputs=[{"name": "logits"}])
    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    return [
        (
            "raw contents of the wrong size",
            short,
            invalid,
            f"input 'input' has {2 * FEATURES * 4 - 4} bytes of binary data but shape "
            f"[2, {FEATURES}] of FP32 needs {2 * FEATURES * 4}",
        ),
        ("raw and typed contents", mixed, invalid, "give every input's values one way"),
        ("more raw contents than inputs", twice, invalid, "2 raw_input_contents for 1 inputs"),
        ("typed values in the wrong list", wrong_field, invalid, "not in contents.int_contents"),
        ("FP16 as typed contents", half, invalid, "FP16 has no typed contents"),
        ("a bad shape", shape, invalid, f"but the model expects [-1, {FEATURES}]"),
        ("an unknown version", version, not_found, "model 'digits' has no version '7' here"),
        ("an unknown output", output, invalid, "unknown output(s) logits"),
    ]


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [case[1:] for case in _bad_requests()],
    ids=[case[0] for case in _bad_requests()],
)
def test_bad_requests_are_refused_with_the_http_bindings_message(mlp_server, request_, code, words):
    got, message = refusal(stub(mlp_server).ModelInfer, request_)
    assert got == code and words in message, message


def test_model_health_and_metadata_know_only_their_model(mlp_server):
    client = stub(mlp_server)
    assert client.ModelReady(pb.ModelReadyRequest(name="digits"), timeout=60).ready
    assert client.ModelReady(pb.ModelReadyRequest(name="digits", version="2"), timeout=60).ready
    code, message = refusal(client.ModelReady, pb.ModelReadyRequest(name="resnet"))
    assert (code, message) == (
        grpc.StatusCode.NOT_FOUND,
        "unknown model 'resnet'; this server serves 'digits'",
    )
    code, _ = refusal(client.ModelMetadata, pb.ModelMetadataRequest(name="digits", version="1"))
    assert code == grpc.StatusCode.NOT_FOUND
    metadata = client.ModelMetadata(pb.ModelMetadataRequest(name="digits"), timeout=60)
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("output", "FP32", [-1, 3])
    ]
    server = client.ServerMetadata(pb.ServerMetadataRequest(), timeout=60)
    status, over_http = call("GET", f"{mlp_server.url}/v2")
    assert status == 200
    assert {
        "name": server.name,
        "version": server.version,
        "extensions": list(server.extensions),
    } == over_http


def test_an_oversize_message_is_refused_and_the_server_goes_on(mlp_server):
    big = np.zeros((MAX_BODY // (FEATURES * 4) + 1, FEATURES), np.float32)
    code, _ = refusal(stub(mlp_server).ModelInfer, raw_request(big))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    response = stub(mlp_server).ModelInfer(raw_request(rows(1)), timeout=60)
    assert len(response.raw_output_contents[0]) == 3 * 4


def test_http_statuses_map_to_grpc_codes():
    assert [status_code(s).name for s in (400, 404, 408, 413, 500, 503, 405, 502)] == [
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "DEADLINE_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "INTERNAL",
        "UNAVAILABLE",
        "INVALID_ARGUMENT",
        "INTERNAL",
    ]


# -- metrics, configuration, drain ------------------------------------------------------


def test_grpc_requests_count_in_the_metrics_the_analysis_reads(tmp_path):
    spec = serving_spec(mlp_artifact(tmp_path))
    with serving(tmp_path, spec, fault_rate=0.5) as server:
        before = Counters.parse(text(f"{server.url}/metrics"))
        client = stub(server)
        answers = []
        for _ in range(4):
            try:
                client.ModelInfer(raw_request(rows(1)), timeout=60)
                answers.append("ok")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.INTERNAL
                assert error.details().startswith("inference failed: injected fault")
                assert ("x-model-version", "2") in error.trailing_metadata()
                answers.append("fault")
        refusal(client.ModelInfer, raw_request(rows(1), model="nope"))  # the client's
        exposition = text(f"{server.url}/metrics")
    assert answers == ["ok", "fault", "ok", "fault"]
    assert 'code="500"' in exposition and 'code="404"' in exposition
    window = Counters.parse(exposition).since(before)
    # As over HTTP: the injected faults are the version's 5xx, the unknown model is not
    # a request of the version's; latency is timed for the four the model was asked.
    assert (window.requests, window.server_errors) == (4, 2)
    assert window.latency_buckets[-1][1] == 4


def test_a_deadline_that_passes_while_the_model_has_the_call_is_a_timed_5xx(tmp_path):
    """A version slower than its clients' deadlines fails its analysis rather than look
    quiet: the call counts as 504 with its latency, not as a client's 499."""
    slow = {"maxBatchSize": 64, "maxQueueDelayMs": 2000}
    with serving(tmp_path, serving_spec(mlp_artifact(tmp_path), batching=slow)) as server:
        before = Counters.parse(text(f"{server.url}/metrics"))
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as late:
                stub(server).ModelInfer(raw_request(rows(1)), timeout=0.5)
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def counted() -> bool:
            window = Counters.parse(text(f"{server.url}/metrics")).since(before)
            return window.server_errors == 3

        eventually(counted)
        window = Counters.parse(text(f"{server.url}/metrics")).since(before)
    assert window.requests == 3 and window.latency_buckets[-1][1] == 3


def test_overload_is_unavailable_with_retry_after_and_a_5xx(tmp_path, kserve):
    # A byte budget smaller than one request: every request is refused as overload.
    limits = Limits(max_buffered_bytes=16, retry_after_s=2)
    with serving(tmp_path, serving_spec(mlp_artifact(tmp_path)), limits=limits) as server:
        with pytest.raises(grpc.RpcError) as refused:
            stub(server).ModelInfer(raw_request(rows(1)), timeout=60)
        assert Counters.parse(text(f"{server.url}/metrics")).server_errors == 1
        # KServe's client retries UNAVAILABLE (3 attempts by default): it can, as the
        # refusal sent no response headers, which would have committed the call.
        code, _ = kserve.call(kserve_infer, server.grpc_target, "digits", "input", rows(1))
        assert code == "UNAVAILABLE"
        assert Counters.parse(text(f"{server.url}/metrics")).server_errors == 1 + 3
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "its limit is 16 (TORCHYARD_MAX_BUFFERED_BYTES); retry after 2 s" in (
        refused.value.details()
    )
    assert ("retry-after", "2") in refused.value.trailing_metadata()
    assert ("x-model-version", "2") in refused.value.trailing_metadata()
    assert not refused.value.initial_metadata()


def _environment(tmp_path, spec, port: int, grpc_port: int) -> dict[str, str]:
    return {
        "TORCHYARD_SPEC": json.dumps(spec),
        "TORCHYARD_PORT": str(port),
        "TORCHYARD_GRPC_PORT": str(grpc_port),
        "TORCHYARD_HOST": "127.0.0.1",
        "TORCHYARD_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }


def _termination_message(tmp_path) -> dict:
    return json.loads((tmp_path / "termination-log").read_text())


def test_a_grpc_port_in_use_ends_the_process_with_port_unavailable(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = serving_spec(mlp_artifact(tmp_path))
        for key, value in _environment(tmp_path, spec, free_port(), port).items():
            monkeypatch.setenv(key, value)
        assert main([]) == 1
    result = _termination_message(tmp_path)
    assert result["reason"] == "PortUnavailable" and result["message"].startswith(f"{port}:")


def test_a_grpc_port_that_is_no_port_is_a_permanent_failure(tmp_path, monkeypatch):
    spec = serving_spec(mlp_artifact(tmp_path))
    for key, value in _environment(tmp_path, spec, free_port(), free_port()).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TORCHYARD_GRPC_PORT", "70000")
    assert main([]) == 3
    result = _termination_message(tmp_path)
    assert result["reason"] == "InvalidSpec" and "TORCHYARD_GRPC_PORT='70000'" in result["message"]


def test_during_the_drain_delay_grpc_answers_but_is_not_ready(tmp_path):
    with serving(tmp_path, serving_spec(mlp_artifact(tmp_path)), drain_delay_s=3.0) as server:
        client = stub(server)
        server.terminate()
        eventually(lambda: not client.ServerReady(pb.ServerReadyRequest(), timeout=10).ready)
        assert not client.ModelReady(pb.ModelReadyRequest(name="digits"), timeout=10).ready
        assert client.ModelInfer(raw_request(rows(1)), timeout=10).raw_output_contents
        eventually(lambda: _refuses_rpcs(server.grpc_target))


def _refuses_rpcs(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            pb_grpc.GRPCInferenceServiceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=2)
        except grpc.RpcError as error:
            return error.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
    return False


def test_sigterm_drains_an_rpc_in_flight_then_exits_0(tmp_path):
    # A long queue delay keeps the RPC in flight while SIGTERM arrives.
    spec = serving_spec(
        mlp_artifact(tmp_path), batching={"maxBatchSize": 64, "maxQueueDelayMs": 3000}
    )
    port, grpc_port = free_port(), free_port()
    url, target = f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "torchyard.cli", "workload", "serve"],
        env={**os.environ, **_environment(tmp_path, spec, port, grpc_port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(url, alive=lambda: server.poll() is None)
        channel = grpc.insecure_channel(target)
        answers = []
        batch = rows(1)
        rpc = threading.Thread(
            target=lambda: answers.append(
                pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(raw_request(batch), timeout=60)
            )
        )
        rpc.start()
        eventually(lambda: in_flight(url) == 1)
        server.send_signal(signal.SIGTERM)
        eventually(lambda: _refuses_rpcs(target) and refuses_connections(url))
        assert rpc.is_alive()  # still waiting for its batch
        rpc.join(timeout=30)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
        log = server.communicate()[0]
    [response] = answers
    values = np.frombuffer(response.raw_output_contents[0], "<f4").reshape(1, 3)
    np.testing.assert_allclose(values, expected(batch), atol=1e-5)
    assert _termination_message(tmp_path)["reason"] == "Drained"
    assert "(gRPC)" in log
