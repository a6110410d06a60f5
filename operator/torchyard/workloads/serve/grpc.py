"""The gRPC face of a serving process: the Open Inference Protocol's gRPC binding (KServe
V2's `inference.GRPCInferenceService`, torchyard/oip/open_inference.proto), next to the
HTTP one and over the same ModelServer, on the same event loop.

A ModelInferRequest is translated into the HTTP binding's forms and checked by the same
protocol.parse_infer_request: raw_input_contents become binary inputs (the same bytes as
the binary data extension), typed `contents` become JSON-like `data` lists (BYTES ones
the binary layout, whose UTF-8 the protocol checks). Every output is answered in
raw_output_contents, as Triton does. A refusal carries the HTTP answer's message under
the gRPC status of its HTTP status (STATUS_CODES), and every inference RPC counts in the
same metrics as an HTTP request, under the HTTP status it would have had: the rollout
analysis reads 5xx there, whichever binding answered. An RPC that the client cancels
counts as 499, nginx's "client closed request", untimed: the client's doing, not the
version's, and like every 4xx not a request the analysis reads. One whose deadline passes
while the model has it counts as a timed 504: a version slower than its clients' deadlines
must fail its analysis, not look quiet.

Parameters (request, input and output `parameters`) are not read: the ones the HTTP
binding knows (binary_data...) choose the HTTP encoding, which gRPC does not have.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from torchyard import __version__
from torchyard.oip import open_inference_pb2 as pb
from torchyard.oip import open_inference_pb2_grpc as pb_grpc
from torchyard.oip.binary import BINARY_SIZE, EXTENSION, encode_bytes
from torchyard.workloads.serve.batching import InferenceError
from torchyard.workloads.serve.body import Holding
from torchyard.workloads.serve.client import VERSION_HEADER
from torchyard.workloads.serve.faults import FAULT_RATE_ENV
from torchyard.workloads.serve.protocol import (
    BYTES,
    Column,
    InferRequest,
    ProtocolError,
    parse_infer_request,
    tensor_bytes,
    tensor_header,
)
from torchyard.workloads.serve.runner import PLATFORM
from torchyard.workloads.serve.server import SERVER_NAME, ModelServer

log = logging.getLogger("torchyard.serve")

VERSION_METADATA = VERSION_HEADER.lower()
"""Response metadata naming the version that answered (gRPC keys are lower case)."""
CLIENT_CLOSED = 499
DEADLINE_PASSED = 504
STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}
CONTENTS: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    BYTES: "bytes_contents",
}
"""The InferTensorContents list that holds each datatype's values; FP16 and BF16 have
none (they travel raw only)."""
RAW_ONLY = ("FP16", "BF16")


def status_code(status: int) -> grpc.StatusCode:
    """The gRPC status of an HTTP status the server answers with."""
    fallback = grpc.StatusCode.INTERNAL if status >= 500 else grpc.StatusCode.INVALID_ARGUMENT
    return STATUS_CODES.get(status, fallback)


def request_body(request: pb.ModelInferRequest) -> tuple[dict[str, Any], memoryview]:
    """The HTTP binding's $inference_request for a ModelInferRequest, and the binary data
    that would follow its JSON: what protocol.parse_infer_request checks."""
    raw = request.raw_input_contents
    if raw:
        typed = [tensor.name for tensor in request.inputs if tensor.HasField("contents")]
        if typed:
            raise ProtocolError(
                f"input(s) {', '.join(typed)} have typed contents and the request has "
                "raw_input_contents: give every input's values one way or the other"
            )
        if len(raw) != len(request.inputs):
            raise ProtocolError(
                f"the request has {len(raw)} raw_input_contents for {len(request.inputs)} "
                "inputs: one per input, in the order of the inputs"
            )
    inputs: list[dict[str, Any]] = []
    parts: list[bytes] = []
    for index, tensor in enumerate(request.inputs):
        item: dict[str, Any] = {
            "name": tensor.name,
            "shape": list(tensor.shape),
            "datatype": tensor.datatype,
        }
        values = None if raw else _typed_values(tensor)
        if raw or tensor.datatype == BYTES:
            # BYTES elements as the binary layout: the protocol then checks them as it
            # checks the binary data extension's (UTF-8, one per value).
            part = raw[index] if raw else encode_bytes(values or [])
            parts.append(part)
            item["parameters"] = {BINARY_SIZE: len(part)}
        else:
            item["data"] = values
        inputs.append(item)
    body: dict[str, Any] = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    if request.outputs:
        body["outputs"] = [{"name": output.name} for output in request.outputs]
    # One input (the usual case) without a copy of its bytes.
    binary = memoryview(parts[0] if len(parts) == 1 else b"".join(parts))
    return body, binary


def _typed_values(tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    """An input's values from its typed contents (none: an empty list, which the protocol
    refuses unless its shape has no values)."""
    filled = [field.name for field, _ in tensor.contents.ListFields()]
    expected = CONTENTS.get(tensor.datatype)
    if expected is None:
        if tensor.datatype in RAW_ONLY and filled:
            raise ProtocolError(
                f"input '{tensor.name}': {tensor.datatype} has no typed contents; send its "
                "values in raw_input_contents"
            )
        return []  # an unknown datatype: the protocol names it
    wrong = [name for name in filled if name != expected]
    if wrong:
        raise ProtocolError(
            f"input '{tensor.name}' is {tensor.datatype}: its values go in "
            f"contents.{expected}, not in contents.{', contents.'.join(wrong)}"
        )
    values = getattr(tensor.contents, expected)
    needed = math.prod(tensor.shape)
    if len(values) != needed:
        # Before a Python list of them is made: a message of millions of values that the
        # shape does not need costs nothing but this count.
        raise ProtocolError(
            f"input '{tensor.name}' has {len(values)} values but shape {list(tensor.shape)} "
            f"needs {needed}"
        )
    return list(values)


def response_message(
    model: str, version: str, request: InferRequest, outputs: dict[str, Column]
) -> pb.ModelInferResponse:
    """The ModelInferResponse with the outputs `request` asked for, all of them raw."""
    names = request.outputs if request.outputs is not None else tuple(outputs)
    response = pb.ModelInferResponse(model_name=model, model_version=version, id=request.id or "")
    for name in names:
        header = tensor_header(name, outputs[name])
        response.outputs.add(name=name, datatype=header["datatype"], shape=header["shape"])
        response.raw_output_contents.append(tensor_bytes(outputs[name]))
    return response


@dataclass
class _Timing:
    received: float | None = None
    """When the model was asked about the request (its latency is timed from then)."""


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The protocol's six RPCs over one ModelServer, with the HTTP routes' answers.

    Every answer names the version that gave it (VERSION_METADATA, as the HTTP binding's
    header): in the initial metadata of a response, in the trailing metadata of a
    refusal. A refusal sends no initial metadata: gRPC clients retry an UNAVAILABLE call
    (KServe's does by default) only while no response headers have arrived."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self._version = ((VERSION_METADATA, server.version),)

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        async with self._answering(context):
            return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        async with self._answering(context):
            return pb.ServerReadyResponse(ready=self.server.ready)

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        async with self._answering(context):
            self.server.check_model(request.name, request.version or None)
            return pb.ModelReadyResponse(ready=self.server.ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        async with self._answering(context):
            return pb.ServerMetadataResponse(
                name=SERVER_NAME, version=__version__, extensions=[EXTENSION]
            )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        server = self.server
        async with self._answering(context):
            server.check_model(request.name, request.version or None)
            _, signature = server.loaded()
            tensor = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(
                name=server.model,
                versions=[server.version],
                platform=PLATFORM,
                inputs=[tensor(**spec.to_json()) for spec in signature.inputs],
                outputs=[tensor(**spec.to_json()) for spec in signature.outputs],
            )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        server = self.server
        timing = _Timing()
        failure: ProtocolError | None = None
        # As ModelServer.infer: the request's bytes go back to the budget once answered.
        with server.metrics.in_flight.track_inprogress(), server.budget.hold() as holding:
            try:
                status = 200
                response = await self._infer(request, holding, timing)
            except ProtocolError as error:
                status, failure = error.status, error
            except InferenceError as error:
                status, failure = 500, ProtocolError(f"inference failed: {error}", 500)
            except asyncio.CancelledError:
                # A deadline that passed while the model had the request is the version's
                # slowness (a 5xx, timed, as the analysis must see it); a client that
                # went away is the client's business.
                remaining = context.time_remaining()
                late = timing.received is not None and remaining is not None and remaining <= 0
                self._count(DEADLINE_PASSED if late else CLIENT_CLOSED, timing)
                raise
            except Exception as error:
                # Counted, unlike an HTTP handler's crash: a 5xx the analysis must see.
                log.exception("unexpected error in ModelInfer")
                status, failure = 500, ProtocolError(f"internal error: {error}", 500)
        self._count(status, timing)
        if failure is not None:
            await self._refuse(context, failure)
        await context.send_initial_metadata(self._version)
        return response

    @asynccontextmanager
    async def _answering(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """Around an RPC's answer: a ProtocolError refuses it, else it is stamped."""
        try:
            yield
        except ProtocolError as error:
            await self._refuse(context, error)
        await context.send_initial_metadata(self._version)

    async def _refuse(self, context: grpc.aio.ServicerContext, error: ProtocolError) -> NoReturn:
        # The HTTP answer's headers (Retry-After) travel as trailing metadata too.
        headers = tuple((name.lower(), value) for name, value in error.headers.items())
        await context.abort(
            status_code(error.status), str(error), trailing_metadata=self._version + headers
        )

    def _count(self, status: int, timing: _Timing) -> None:
        received = timing.received
        latency = None if received is None else time.perf_counter() - received
        self.server.metrics.request(status, latency)

    async def _infer(
        self, request: pb.ModelInferRequest, holding: Holding, timing: _Timing
    ) -> pb.ModelInferResponse:
        """ModelServer._infer's checks, in its order, on a message gRPC has read whole."""
        server = self.server
        server.check_model(request.model_name, request.model_version or None)
        batcher, signature = server.loaded()
        if server.faults.next_fails():
            timing.received = time.perf_counter()
            raise InferenceError(f"injected fault ({FAULT_RATE_ENV}={server.faults.rate})")
        server.check_room()
        # gRPC has already read the message (up to grpc.max_receive_message_length);
        # from here it counts in the byte budget like an HTTP body.
        holding.take(request.ByteSize())
        received = time.perf_counter()
        body, binary = request_body(request)
        parsed = parse_infer_request(body, signature, server.limits, binary)
        del body, binary
        server.check_room()
        timing.received = received
        outputs = await batcher.infer(parsed.inputs, parsed.rows)
        return response_message(server.model, server.version, parsed, outputs)


async def start_grpc(server: ModelServer, host: str, port: int) -> grpc.aio.Server:
    """The gRPC server of `server`, listening on host:port; OSError when it cannot."""
    limits = server.limits
    grpc_server = grpc.aio.server(
        # gRPC reads a whole message before the servicer (and the byte budget) sees it:
        # at most this many at once, so what it holds is about twice the budget at worst;
        # more are refused RESOURCE_EXHAUSTED by gRPC itself (not counted in /metrics).
        maximum_concurrent_rpcs=max(16, 2 * limits.max_buffered_bytes // limits.max_body_bytes),
        options=[
            # The HTTP body limit: gRPC refuses a bigger message (RESOURCE_EXHAUSTED)
            # before it reaches the servicer.
            ("grpc.max_receive_message_length", limits.max_body_bytes),
            # Idle connections go as HTTP's do; every connection is asked to reconnect
            # after a minute (in-flight calls get the body timeout to finish), which cuts
            # off streams stalled mid-message and spreads long-lived clients over the
            # Service's pods again, as its replica-ratio weights assume.
            ("grpc.max_connection_idle_ms", int(limits.header_timeout_s * 1000)),
            ("grpc.max_connection_age_ms", 60_000),
            ("grpc.max_connection_age_grace_ms", int(limits.body_timeout_s * 1000)),
            # gRPC's default (SO_REUSEPORT on) would share a port in use instead of
            # failing; a second server must fail as the HTTP one does.
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(server), grpc_server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = grpc_server.add_insecure_port(address)
    except RuntimeError as error:  # what grpcio raises when it cannot bind
        bound, reason = 0, str(error)
    else:
        reason = "address in use or not available"
    if not bound:
        await grpc_server.stop(None)
        raise OSError(f"gRPC cannot listen on {address}: {reason}")
    await grpc_server.start()
    return grpc_server


async def stop_grpc(grpc_server: grpc.aio.Server | None, grace_s: float) -> None:
    """Refuse new RPCs at once; let those in flight finish within `grace_s`."""
    if grpc_server is not None:
        await grpc_server.stop(grace_s)
