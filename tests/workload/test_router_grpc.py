"""The router's gRPC face (torchyard.router.grpc) in front of two real serving processes
of one model: ModelInfer calls are shared by weight exactly, per call on one connection;
the backend's refusals reach the client as they were; other services are not the
router's. The two versions listen on 127.0.0.2 and 127.0.0.3 with one gRPC port, as the
pods of a Deployment do."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import torch

from tests.workload.serving import FEATURES, free_port, mlp_artifact, serving, serving_spec
from tests.workload.test_router import RunningRouter, samples
from torchyard.oip import open_inference_pb2 as pb
from torchyard.oip import open_inference_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("router-grpc")
    artifact = mlp_artifact(directory)
    port = free_port()
    with (
        serving(
            directory, {**serving_spec(artifact), "version": "1"}, host="127.0.0.2", grpc_port=port
        ) as one,
        serving(directory, serving_spec(artifact), host="127.0.0.3", grpc_port=port) as two,
    ):
        yield {"1": one, "2": two, "grpc_port": port}


def routes(versions: dict[str, Any], candidate: int) -> dict[str, Any]:
    return {
        "generation": 1,
        "versions": [
            {"version": "2", "weight": candidate, "endpoints": [f"127.0.0.3:{versions['2'].port}"]},
            {
                "version": "1",
                "weight": 100 - candidate,
                "endpoints": [f"127.0.0.2:{versions['1'].port}"],
            },
        ],
    }


def request(model: str = "digits") -> pb.ModelInferRequest:
    batch = torch.ones(2, FEATURES).numpy()
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input", datatype="FP32", shape=[2, FEATURES]
    )
    return pb.ModelInferRequest(
        model_name=model, inputs=[tensor], raw_input_contents=[batch.astype("<f4").tobytes()]
    )


def test_calls_on_one_connection_are_shared_by_weight(versions):
    with RunningRouter(grpc_backend_port=versions["grpc_port"]) as running:
        assert running.push(routes(versions, 25))[0] == 200
        assert running.grpc_port
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
            seen: Counter = Counter()
            for _ in range(400):
                answer, call = stub.ModelInfer.with_call(request(), timeout=10)
                seen[answer.model_version] += 1
                # The serving pod's metadata reaches the client through the router.
                assert ("x-model-version", answer.model_version) in call.initial_metadata()
                values = np.frombuffer(answer.raw_output_contents[0], dtype="<f4")
                assert values.shape == (6,)
        served = samples(running, "torchyard_router_requests_total")
    assert seen == Counter({"2": 100, "1": 300})
    # Counted with the HTTP face's calls: one served share, whichever binding.
    assert served == {("200", "digits", "2"): 100, ("200", "digits", "1"): 300}


def test_a_backends_refusal_reaches_the_client_as_it_was(versions):
    with RunningRouter(grpc_backend_port=versions["grpc_port"]) as running:
        running.push(routes(versions, 50))
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(request("no-such-model"), timeout=10)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
            assert "no-such-model" in (refused.value.details() or "")
            trailing = dict(refused.value.trailing_metadata() or ())
            assert trailing.get("x-model-version") in ("1", "2")
            # Not the router's to answer: another gRPC service on its port.
            unknown = channel.unary_unary("/grpc.health.v1.Health/Check")
            with pytest.raises(grpc.RpcError) as other:
                unknown(b"", timeout=10)
            assert other.value.code() == grpc.StatusCode.UNIMPLEMENTED
        served = samples(running, "torchyard_router_requests_total")
    assert sum(served.values()) == 1 and next(iter(served))[0] == "404"


def test_a_version_whose_pod_is_gone_hands_its_calls_to_the_other(versions):
    with RunningRouter(grpc_backend_port=versions["grpc_port"]) as running:
        table = routes(versions, 50)
        table["versions"][0]["endpoints"] = ["127.0.0.9:1"]  # nothing listens on .9
        running.push(table)
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            seen = Counter(stub.ModelInfer(request(), timeout=10).model_version for _ in range(20))
        retries = samples(running, "torchyard_router_retries_total")
    assert seen == Counter({"1": 20})
    assert retries[("digits", "2")] >= 1


def test_without_a_table_calls_are_unavailable(versions):
    with (
        RunningRouter(grpc_backend_port=versions["grpc_port"]) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no version of model 'digits'" in (refused.value.details() or "")
