"""The Open Inference Protocol v2 (KServe V2, Triton) REST types: parsing and encoding.

Pure of HTTP: the handlers pass parsed JSON (and the binary part of the body, if any)
in and get JSON-ready dicts (and binary parts) out, and a ProtocolError carries the HTTP
status and the message of the protocol's error object ({"error": "..."}). A tensor's
values come as JSON `data` or, with the binary data extension, as raw bytes after the
JSON (torchyard.oip.binary); the gRPC binding translates its messages to the same forms.

JSON has no NaN or Infinity. Requests with them are refused (the body reader refuses the
literals, and values that overflow their datatype are refused here); a model's
non-finite outputs are written as the strings "NaN", "Infinity" and "-Infinity", as the
protobuf JSON mapping of the protocol's gRPC form does, never as bare tokens.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from torchyard.oip.binary import (
    BINARY_OUTPUT,
    BINARY_OUTPUTS,
    BINARY_SIZE,
    BinaryError,
    Cursor,
    decode_bytes,
    encode_bytes,
    fixed_size,
)
from torchyard.workloads.serve.limits import ENV, Limits

BYTES = "BYTES"
DATATYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool,
    "UINT8": torch.uint8,
    "UINT16": torch.uint16,
    "UINT32": torch.uint32,
    "UINT64": torch.uint64,
    "INT8": torch.int8,
    "INT16": torch.int16,
    "INT32": torch.int32,
    "INT64": torch.int64,
    "FP16": torch.float16,
    "FP32": torch.float32,
    "FP64": torch.float64,
    "BF16": torch.bfloat16,  # a Triton extension; clients that know it use it
}
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}
TOO_LARGE = 413
NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}

dumps = functools.partial(json.dumps, allow_nan=False)
"""JSON for responses: raises rather than write a bare NaN or Infinity."""

Column = torch.Tensor | list[str]
"""One tensor of a request or response; BYTES tensors are lists of strings. Either way
rows run along dimension 0, which is what batching concatenates and splits."""


class ProtocolError(Exception):
    """A request the protocol refuses; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.headers: dict[str, str] = {}


@dataclass(frozen=True)
class TensorSpec:
    """Name, datatype and shape of a model input or output (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def accepts(self, shape: list[int]) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class InferRequest:
    """A decoded inference request: its inputs share `rows` along dimension 0."""

    id: str | None
    inputs: dict[str, Column]
    rows: int
    outputs: tuple[str, ...] | None
    """Names of the outputs asked for; None for all."""
    binary_outputs: frozenset[str] = frozenset()
    """Outputs to answer with as binary data (the binary data extension)."""


def datatype_of(dtype: torch.dtype) -> str:
    try:
        return _NAMES[dtype]
    except KeyError:
        raise TypeError(f"no Open Inference Protocol datatype for {dtype}") from None


def parse_infer_request(
    body: Any,
    signature: Signature,
    limits: Limits | None = None,
    binary: memoryview | None = None,
) -> InferRequest:
    """Decode and check an $inference_request against the model's signature (and the
    server's limits on rows and tensor values: 413 beyond them). `binary` is what
    follows the JSON in a body of the binary data extension: the inputs' bytes, in order."""
    limits = limits or Limits()
    if not isinstance(body, Mapping):
        raise ProtocolError("the inference request must be a JSON object")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("'id' must be a string")
    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ProtocolError("'inputs' must be a non-empty list of tensors")
    expected = {spec.name: spec for spec in signature.inputs}
    cursor = Cursor(binary if binary is not None else memoryview(b""))
    inputs: dict[str, Column] = {}
    rows: set[int] = set()
    values = 0
    for raw in raw_inputs:
        try:
            name, column, count = _parse_input(raw, expected, limits, values, cursor)
        except BinaryError as error:
            raise ProtocolError(str(error)) from None
        values += len(column) if isinstance(column, list) else column.numel()
        if name in inputs:
            raise ProtocolError(f"input '{name}' is given twice")
        inputs[name] = column
        rows.add(count)
    if cursor.left:
        raise ProtocolError(
            f"{cursor.left} bytes of binary data follow the JSON that no input's "
            f"parameters.{BINARY_SIZE} accounts for"
        )
    missing = [name for name in expected if name not in inputs]
    if missing:
        raise ProtocolError(f"missing input(s) {', '.join(missing)}")
    if len(rows) != 1:
        raise ProtocolError(f"inputs disagree on the batch size (dimension 0): {sorted(rows)}")
    outputs, binary_outputs = _requested_outputs(body, signature)
    return InferRequest(
        id=request_id,
        inputs=inputs,
        rows=rows.pop(),
        outputs=outputs,
        binary_outputs=binary_outputs,
    )


def _parse_input(
    raw: Any,
    expected: Mapping[str, TensorSpec],
    limits: Limits,
    values_before: int,
    binary: Cursor,
) -> tuple[str, Column, int]:
    if not isinstance(raw, Mapping):
        raise ProtocolError("each input must be an object with name, shape, datatype, data")
    for field in ("name", "shape", "datatype"):
        if field not in raw:
            raise ProtocolError(f"an input has no '{field}'")
    name, shape, datatype = raw["name"], raw["shape"], raw["datatype"]
    if name not in expected:
        raise ProtocolError(f"unexpected input '{name}'; the model takes {', '.join(expected)}")
    size = _binary_size(name, raw)
    spec = expected[name]
    if datatype != BYTES and datatype not in DATATYPES:
        raise ProtocolError(f"input '{name}': unknown datatype {datatype!r}")
    if datatype != spec.datatype:
        raise ProtocolError(
            f"input '{name}' has datatype {datatype} but the model expects {spec.datatype}"
        )
    if not (isinstance(shape, list) and all(_is_count(dim) for dim in shape)):
        raise ProtocolError(f"input '{name}': shape must be a list of non-negative integers")
    if not spec.accepts(shape):
        raise ProtocolError(
            f"input '{name}' has shape {shape} but the model expects {list(spec.shape)} "
            "(-1: any size)"
        )
    if not shape or shape[0] < 1:
        raise ProtocolError(f"input '{name}': dimension 0 (the batch) must be at least 1")
    # Before any value is decoded: the shape says what decoding would cost.
    _check_size(name, shape, values_before, limits)
    if size is not None:
        column = _from_binary(name, binary.take(size, name), datatype, shape)
    elif not isinstance(raw["data"], list):
        raise ProtocolError(f"input '{name}': data must be a JSON array")
    elif datatype == BYTES:
        column = _strings(name, raw["data"])
    else:
        column = _tensor(name, raw["data"], datatype)
    count = len(column) if isinstance(column, list) else column.numel()
    if count != math.prod(shape):
        raise ProtocolError(
            f"input '{name}' has {count} values but shape {shape} needs {math.prod(shape)}"
        )
    if isinstance(column, torch.Tensor):
        column = column.reshape(shape)
    return name, column, shape[0]


def _binary_size(name: str, raw: Mapping[str, Any]) -> int | None:
    """The input's binary_data_size, None when its values are JSON `data`; exactly one
    of the two."""
    parameters = _parameters(raw, f"input '{name}'")
    size = parameters.get(BINARY_SIZE)
    if size is None:
        if "data" not in raw:
            raise ProtocolError(f"input '{name}' has neither 'data' nor parameters.{BINARY_SIZE}")
        return None
    if "data" in raw:
        raise ProtocolError(f"input '{name}' has both 'data' and parameters.{BINARY_SIZE}")
    if not _is_count(size):
        raise ProtocolError(
            f"input '{name}': parameters.{BINARY_SIZE} must be a non-negative integer"
        )
    return size


def _parameters(raw: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise ProtocolError(f"{what}: 'parameters' must be an object")
    return parameters


def _from_binary(name: str, data: memoryview, datatype: str, shape: list[int]) -> Column:
    """A tensor from its bytes in the protocol's layout (little-endian, as torch reads
    them on the little-endian machines it serves on)."""
    if datatype == BYTES:
        elements = decode_bytes(data, math.prod(shape), name)
        try:
            return [element.decode() for element in elements]
        except UnicodeDecodeError as error:
            raise ProtocolError(f"input '{name}': a BYTES element is not UTF-8: {error}") from None
    needed = fixed_size(datatype, shape)
    if len(data) != needed:
        raise ProtocolError(
            f"input '{name}' has {len(data)} bytes of binary data but shape {shape} of "
            f"{datatype} needs {needed}"
        )
    dtype = DATATYPES[datatype]
    if not needed:
        return torch.empty(0, dtype=dtype)
    # A copy: frombuffer shares the body's memory, which goes back to the byte budget.
    if dtype == torch.bool:
        raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        if bool((raw > 1).any()):
            raise ProtocolError(f"input '{name}': BOOL bytes must be 0 or 1")
        return raw.to(torch.bool)
    tensor = torch.frombuffer(bytearray(data), dtype=dtype)
    _check_finite(name, tensor, datatype)
    return tensor


def _check_size(name: str, shape: list[int], values_before: int, limits: Limits) -> None:
    if shape[0] > limits.max_rows:
        raise ProtocolError(
            f"input '{name}' has {shape[0]} rows; at most {limits.max_rows} per request "
            f"({ENV['max_rows']}): split it into several requests",
            TOO_LARGE,
        )
    values = values_before + math.prod(shape)
    if values > limits.max_elements:
        raise ProtocolError(
            f"the request has {values} tensor values or more; at most {limits.max_elements} "
            f"per request ({ENV['max_elements']})",
            TOO_LARGE,
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(name: str, data: list[Any], datatype: str) -> torch.Tensor:
    """Flat or nested JSON numbers as a tensor of `datatype`; refuses what would have to be
    truncated, wrapped or rounded to infinity to fit (1.5 as INT64, 300 as UINT8, 1e5 as
    FP16, "a" or true as FP32)."""
    dtype = DATATYPES[datatype]
    if dtype != torch.bool and _has_booleans(data):
        # torch would read true as 1: a client that sends booleans meant something else.
        raise ProtocolError(f"input '{name}': data are not all {datatype} values (booleans)")
    try:
        if dtype == torch.bool or not dtype.is_floating_point:
            found = torch.tensor(data).dtype if data else dtype
            if (dtype == torch.bool) != (found == torch.bool) or found.is_floating_point:
                raise ProtocolError(f"input '{name}': data are not all {datatype} values")
        tensor = torch.tensor(data, dtype=dtype)
    except (TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise ProtocolError(f"input '{name}': data do not fit {datatype}: {error}") from None
    _check_finite(name, tensor, datatype)
    return tensor


def _check_finite(name: str, tensor: torch.Tensor, datatype: str) -> None:
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        count = int((~torch.isfinite(tensor)).sum())
        raise ProtocolError(
            f"input '{name}': {count} value(s) are NaN or beyond the range of {datatype} "
            f"(±{torch.finfo(tensor.dtype).max:g}); non-finite numbers are refused"
        )


def _has_booleans(data: list[Any]) -> bool:
    """Whether nested lists hold a boolean anywhere; per list in C (map, set), so a
    request of millions of values costs milliseconds."""
    pending = [data]
    while pending:
        items = pending.pop()
        kinds = set(map(type, items))
        if bool in kinds:
            return True
        if list in kinds:
            pending.extend(item for item in items if type(item) is list)
    return False


def _strings(name: str, data: list[Any]) -> list[str]:
    values = list(_flatten(data))
    if not all(isinstance(value, str) for value in values):
        raise ProtocolError(f"input '{name}': BYTES data must be strings")
    return values


def _flatten(data: list[Any]) -> Iterator[Any]:
    for value in data:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _requested_outputs(
    body: Mapping[str, Any], signature: Signature
) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    """The outputs asked for (None for all) and those to send as binary data: each
    output's parameters.binary_data, or else the request's parameters.binary_data_output."""
    known = [spec.name for spec in signature.outputs]
    default = _flag(_parameters(body, "the request"), BINARY_OUTPUTS, "the request")
    raw = body.get("outputs")
    if raw is None:
        return None, frozenset(known if default else ())
    if not isinstance(raw, list) or not all(
        isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in raw
    ):
        raise ProtocolError("'outputs' must be a list of objects with a name")
    names = tuple(item["name"] for item in raw)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ProtocolError(
            f"unknown output(s) {', '.join(unknown)}; the model gives {', '.join(known)}"
        )
    binary = set()
    for item in raw:
        what = f"output '{item['name']}'"
        flag = _flag(_parameters(item, what), BINARY_OUTPUT, what)
        if flag or (flag is None and default):
            binary.add(item["name"])
    return names, frozenset(binary)


def _flag(parameters: Mapping[str, Any], key: str, what: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise ProtocolError(f"{what}: parameters.{key} must be true or false")
    return value


def encode_tensor(name: str, value: Column) -> dict[str, Any]:
    """A $response_output: shape, datatype and the data flattened in row-major order."""
    if isinstance(value, list):
        return {**tensor_header(name, value), "data": value}
    data = value.reshape(-1).tolist()
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        data = [number if math.isfinite(number) else _name(number) for number in data]
    return {**tensor_header(name, value), "data": data}


def tensor_header(name: str, value: Column) -> dict[str, Any]:
    """A tensor's name, shape and datatype."""
    if isinstance(value, list):
        return {"name": name, "shape": [len(value)], "datatype": BYTES}
    return {"name": name, "shape": list(value.shape), "datatype": datatype_of(value.dtype)}


def tensor_bytes(value: Column) -> bytes:
    """A tensor in the protocol's binary layout: row-major, little-endian, no padding."""
    if isinstance(value, list):
        return encode_bytes(value)
    flat = value.detach().contiguous().reshape(-1)
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    # Through uint8 so that every dtype (BF16, the wide unsigned ones) reaches numpy.
    return flat.view(torch.uint8).numpy().tobytes()


def _name(number: float) -> str:
    return "NaN" if math.isnan(number) else NON_FINITE[number]


def infer_response(
    model: str,
    version: str,
    request: InferRequest,
    outputs: Mapping[str, Column],
) -> tuple[dict[str, Any], list[bytes]]:
    """The $inference_response for `request`, with the outputs it asked for, and the
    bytes of those it asked for as binary data, in order (they follow the JSON)."""
    names = request.outputs if request.outputs is not None else tuple(outputs)
    encoded, parts = [], []
    for name in names:
        if name in request.binary_outputs:
            part = tensor_bytes(outputs[name])
            parts.append(part)
            header = tensor_header(name, outputs[name])
            encoded.append({**header, "parameters": {BINARY_SIZE: len(part)}})
        else:
            encoded.append(encode_tensor(name, outputs[name]))
    response: dict[str, Any] = {
        "model_name": model,
        "model_version": version,
        "outputs": encoded,
    }
    if request.id is not None:
        response["id"] = request.id
    return response, parts
