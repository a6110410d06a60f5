"""The protocol's binary tensor layout (Triton's binary data extension; gRPC's
raw_input_contents and raw_output_contents use the same bytes).

A tensor is its elements in row-major order, little-endian, with no padding: BOOL is one
byte (0 or 1), FP16 and BF16 two, and so on. A BYTES element is a 4-byte little-endian
length followed by that many bytes.

Over HTTP, a body with binary tensors is the JSON header followed by the tensors' bytes
in the order of the inputs (or outputs) that carry `parameters.binary_data_size`; the
`Inference-Header-Content-Length` header gives the JSON's length in bytes.

Everything a client declares (the header's length, each tensor's size, each BYTES
element's length prefix) is checked against the bytes that arrived before it is used:
a lie is a BinaryError naming it, never a read past the buffer.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence

HEADER_LENGTH = "Inference-Header-Content-Length"
"""The HTTP header that says how long the JSON part of a binary body is."""
BINARY_SIZE = "binary_data_size"
"""An input's or output's parameter: its tensor is binary, this many bytes long."""
BINARY_OUTPUT = "binary_data"
"""A requested output's parameter: send it binary (true) or as JSON (false)."""
BINARY_OUTPUTS = "binary_data_output"
"""The request's parameter: the default of BINARY_OUTPUT for every output."""
EXTENSION = "binary_tensor_data"
"""The name servers list in their metadata's extensions."""

ELEMENT_SIZES = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "BF16": 2,
    "FP32": 4,
    "FP64": 8,
}
BYTES = "BYTES"
_LENGTH = struct.Struct("<I")


class BinaryError(ValueError):
    """Binary tensor data that do not match what the request declares."""


def split_body(body: bytes | bytearray, header_length: str) -> tuple[memoryview, memoryview]:
    """The JSON header and the binary part of a body whose HEADER_LENGTH is `header_length`."""
    view = memoryview(body)
    # ASCII digits only: int() would also take "+1", " 1 " and "1_0".
    if not (header_length.isascii() and header_length.isdigit()):
        raise BinaryError(f"{HEADER_LENGTH} must be an integer, not {header_length!r}")
    length = int(header_length)
    if length == 0:
        # Triton's "raw binary request" (one input, no JSON) needs the model's config to
        # name the input; it is not part of the protocol and not supported here.
        raise BinaryError(
            f"{HEADER_LENGTH} 0 (a body of raw tensor bytes with no JSON) is not supported: "
            "send the JSON header with the inputs' names, shapes and datatypes"
        )
    if not 0 < length <= len(view):
        raise BinaryError(
            f"{HEADER_LENGTH} is {length} but the body has {len(view)} bytes: the JSON "
            "header cannot be longer than the body"
        )
    return view[:length], view[length:]


def fixed_size(datatype: str, shape: Sequence[int]) -> int:
    """Bytes of a tensor of a fixed-size datatype (not BYTES)."""
    return ELEMENT_SIZES[datatype] * math.prod(shape)


class Cursor:
    """Reads the binary part of a request, tensor after tensor, in order."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.offset = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.offset

    def take(self, size: int, name: str) -> memoryview:
        if size > self.left:
            raise BinaryError(
                f"input '{name}' declares {size} bytes of binary data but only {self.left} "
                "are left in the body"
            )
        part = self.data[self.offset : self.offset + size]
        self.offset += size
        return part


def decode_bytes(data: memoryview | bytes, count: int, name: str) -> list[bytes]:
    """`count` BYTES elements that fill `data` exactly."""
    elements: list[bytes] = []
    offset = 0
    for index in range(count):
        if len(data) - offset < _LENGTH.size:
            raise BinaryError(
                f"input '{name}': element {index} of {count} has no 4-byte length prefix "
                f"({len(data) - offset} bytes left)"
            )
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if length > len(data) - offset:
            raise BinaryError(
                f"input '{name}': element {index} declares {length} bytes but only "
                f"{len(data) - offset} are left"
            )
        elements.append(bytes(data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise BinaryError(
            f"input '{name}': {len(data) - offset} bytes are left after its {count} BYTES "
            "elements; binary_data_size must be exactly the elements' size"
        )
    return elements


def encode_bytes(values: Iterable[str | bytes]) -> bytes:
    """BYTES elements, each with its length prefix; strings as UTF-8."""
    parts = []
    for value in values:
        raw = value.encode() if isinstance(value, str) else value
        parts += [_LENGTH.pack(len(raw)), raw]
    return b"".join(parts)
