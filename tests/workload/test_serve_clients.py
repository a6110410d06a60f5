"""Third-party Open Inference Protocol clients, unmodified and with their defaults,
against the real serving process over HTTP: Triton's tritonclient.http and KServe's
InferenceRESTClient. Both send tensors with the binary data extension by default (the
JSON, then the raw bytes) and ask for binary outputs; the answers must equal what the
model computes and what the JSON form of the protocol answers.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from tests.workload.serving import (
    FEATURES,
    call,
    infer_body,
    mlp_artifact,
    output_tensor,
    serving,
    serving_spec,
    small_mlp,
    tiny_text_artifact,
)

SENTENCES = ["a first sentence", "ünïcödé text, and a longer second sentence", "x"]


@pytest.fixture(scope="module")
def mlp_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("clients")
    with serving(directory, serving_spec(mlp_artifact(directory))) as server:
        yield server


def triton(server):
    import tritonclient.http as http

    return http.InferenceServerClient(url=f"127.0.0.1:{server.port}")


def rows(count: int = 4) -> np.ndarray:
    return torch.randn(count, FEATURES, generator=torch.Generator().manual_seed(7)).numpy()


def expected(batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return small_mlp()(torch.from_numpy(batch)).numpy()


def test_tritonclient_http_with_its_defaults(mlp_server):
    import tritonclient.http as http

    client = triton(mlp_server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("digits")
    assert metadata["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, FEATURES]}

    batch = rows()
    tensor = http.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)  # binary_data=True: the binary data extension
    result = client.infer("digits", [tensor], request_id="r-1")
    assert result.get_response()["id"] == "r-1"
    assert result.get_response()["model_version"] == "2"
    # The output came binary: a header with its size and no JSON data.
    (output,) = result.get_response()["outputs"]
    assert output["parameters"]["binary_data_size"] == batch.shape[0] * 3 * 4
    assert "data" not in output
    np.testing.assert_allclose(result.as_numpy("output"), expected(batch), atol=1e-5)


def test_binary_input_with_a_json_output_and_json_input_with_a_binary_output(mlp_server):
    import tritonclient.http as http

    client, batch = triton(mlp_server), rows(3)
    binary_in = http.InferInput("input", list(batch.shape), "FP32")
    binary_in.set_data_from_numpy(batch)
    as_json = http.InferRequestedOutput("output", binary_data=False)
    result = client.infer("digits", [binary_in], outputs=[as_json])
    assert "data" in result.get_response()["outputs"][0]
    np.testing.assert_allclose(result.as_numpy("output"), expected(batch), atol=1e-5)

    json_in = http.InferInput("input", list(batch.shape), "FP32")
    json_in.set_data_from_numpy(batch, binary_data=False)
    result = client.infer("digits", [json_in], outputs=[http.InferRequestedOutput("output")])
    assert "binary_data_size" in result.get_response()["outputs"][0]["parameters"]
    np.testing.assert_allclose(result.as_numpy("output"), expected(batch), atol=1e-5)

    # The same rows as plain JSON give the same numbers.
    status, answer = mlp_server.infer(infer_body(torch.from_numpy(batch)))
    assert status == 200
    np.testing.assert_allclose(output_tensor(answer).numpy(), result.as_numpy("output"), atol=0)


def test_tritonclient_sees_the_servers_error_messages(mlp_server):
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    client = triton(mlp_server)
    wrong = np.zeros((2, FEATURES + 1), dtype=np.float32)
    tensor = http.InferInput("input", list(wrong.shape), "FP32")
    tensor.set_data_from_numpy(wrong)
    with pytest.raises(InferenceServerException) as refused:
        client.infer("digits", [tensor])
    assert refused.value.status() == "400"
    assert f"shape [2, {FEATURES + 1}] but the model expects [-1, {FEATURES}]" in str(refused.value)
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        client.infer("nope", [tensor])


def test_kserve_rest_client_with_its_defaults(mlp_server):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    batch = rows(5)

    async def infer(model: str):
        tensor = InferInput(name="input", shape=list(batch.shape), datatype="FP32")
        tensor.set_data_from_numpy(batch)  # binary_data=True by default
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        return await client.infer(
            mlp_server.url, InferRequest(model_name=model, infer_inputs=[tensor]), model_name=model
        )

    response = asyncio.run(infer("digits"))
    np.testing.assert_allclose(response.outputs[0].as_numpy(), expected(batch), atol=1e-5)

    import httpx

    with pytest.raises(httpx.HTTPStatusError) as refused:
        asyncio.run(infer("nope"))
    assert refused.value.response.status_code == 404
    # KServe's client reads the message only from exactly `application/json`.
    assert "unknown model 'nope'; this server serves 'digits'" in str(refused.value)


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    """A tiny BERT with MiniLM's tokenizer (BYTES in, FP32 embeddings out)."""
    directory = tmp_path_factory.mktemp("text-clients")
    spec = serving_spec(tiny_text_artifact(directory), format="huggingface")
    with serving(directory, spec) as server:
        yield server


def test_bytes_inputs_from_tritonclient_give_the_json_forms_embeddings(text_server):
    import tritonclient.http as http

    texts = np.array([sentence.encode() for sentence in SENTENCES], dtype=np.object_)
    tensor = http.InferInput("text", [len(SENTENCES)], "BYTES")
    tensor.set_data_from_numpy(texts)  # 4-byte length, then the UTF-8 bytes, per element
    result = triton(text_server).infer("digits", [tensor])
    embeddings = result.as_numpy("embedding")
    assert embeddings.shape == (len(SENTENCES), 32)

    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": SENTENCES}]}
    status, answer = call("POST", f"{text_server.model_url}/infer", body)
    assert status == 200
    np.testing.assert_allclose(output_tensor(answer, "embedding").numpy(), embeddings, atol=1e-6)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_compressed_requests(mlp_server, algorithm):
    import tritonclient.http as http

    batch = rows(2)
    tensor = http.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    result = triton(mlp_server).infer("digits", [tensor], request_compression_algorithm=algorithm)
    np.testing.assert_allclose(result.as_numpy("output"), expected(batch), atol=1e-5)
