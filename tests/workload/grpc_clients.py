"""Third-party gRPC clients of the Open Inference Protocol, unmodified and with their
defaults, each in a process of its own.

tritonclient.grpc and KServe both register their own copies of the protocol's messages
(package `inference`) in protobuf's default descriptor pool, which refuses a second
definition of the same name: the two cannot be imported into one process, whichever
comes second fails. So each runs in a child process (`ClientProcess`) that imports only
its library; the functions here run there, and return numpy arrays and plain values,
refusals included (status code name, message), never the libraries' own exceptions.
Imports only numpy at module level, so that a child starts in a second.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

Refusal = tuple[str, str]
"""(gRPC status code name, its message)."""


class ClientProcess:
    """One child process that runs the functions below; `call` returns what they return."""

    def __init__(self) -> None:
        # spawn: a fork would inherit the parent's protobuf pool (and its threads).
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._pool.submit(function, *args, **kwargs).result(timeout=120)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


# -- tritonclient.grpc ----------------------------------------------------------------


def triton_health(target: str, model: str) -> dict[str, Any]:
    """What tritonclient.grpc's health and metadata calls answer."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url=target)
    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server": client.get_server_metadata(as_json=True),
        "model": client.get_model_metadata(model, as_json=True),
    }


def triton_infer(
    target: str,
    model: str,
    inputs: dict[str, tuple[str, np.ndarray]],
    request_id: str = "",
) -> dict[str, Any] | Refusal:
    """The outputs (name: array) of tritonclient.grpc's `infer` with `inputs` (name:
    (datatype, array)), the response's id and model_version; or its refusal."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url=target)
    tensors = []
    for name, (datatype, array) in inputs.items():
        tensor = grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)  # always raw_input_contents over gRPC
        tensors.append(tensor)
    try:
        result = client.infer(model, tensors, request_id=request_id)
    except InferenceServerException as error:
        return str(error.status()).removeprefix("StatusCode."), str(error.message())
    response = result.get_response()
    return {
        "id": response.id,
        "model_version": response.model_version,
        "outputs": {output.name: result.as_numpy(output.name) for output in response.outputs},
    }


# -- KServe ---------------------------------------------------------------------------


def kserve_infer(
    target: str, model: str, name: str, array: np.ndarray, *, typed: bool = False
) -> list[tuple[str, np.ndarray]] | Refusal:
    """The outputs of KServe's InferenceGRPCClient: the tensor raw (its default, from
    numpy) or, with `typed`, as a list (typed contents)."""
    import grpc
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    if typed:
        tensor = InferInput(
            name=name, shape=list(array.shape), datatype="FP32", data=array.ravel().tolist()
        )
    else:
        tensor = InferInput(name=name, shape=list(array.shape), datatype="FP32")
        tensor.set_data_from_numpy(array)

    async def infer() -> list[tuple[str, np.ndarray]] | Refusal:
        async with InferenceGRPCClient(target) as client:
            try:
                response = await client.infer(InferRequest(model_name=model, infer_inputs=[tensor]))
            except grpc.aio.AioRpcError as error:
                return error.code().name, str(error.details())
        return [(output.name, output.as_numpy()) for output in response.outputs]

    return asyncio.run(infer())
