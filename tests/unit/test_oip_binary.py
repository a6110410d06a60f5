"""The binary tensor layout (torchyard.oip.binary), checked against the protocol's own
example and against tritonclient's encoder, and the protocol's binary inputs and outputs
(torchyard.workloads.serve.protocol) for the datatypes JSON cannot carry well."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from torchyard.oip.binary import (
    BinaryError,
    Cursor,
    decode_bytes,
    encode_bytes,
    fixed_size,
    split_body,
)
from torchyard.workloads.serve.protocol import (
    InferRequest,
    ProtocolError,
    Signature,
    TensorSpec,
    infer_response,
    parse_infer_request,
    tensor_bytes,
)


def test_the_extensions_example_sizes():
    # The extension's documented example: UINT32 [2, 2] is 16 bytes, BOOL [3] is 3.
    assert fixed_size("UINT32", [2, 2]) == 16
    assert fixed_size("BOOL", [3]) == 3
    assert fixed_size("BF16", [4, 2]) == 16


def test_bytes_elements_are_what_tritonclient_writes():
    from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

    values = ["", "a", "ünï", "x" * 300]
    theirs = serialize_byte_tensor(np.array([v.encode() for v in values], dtype=np.object_))
    assert encode_bytes(values) == theirs.item()
    assert decode_bytes(memoryview(theirs.item()), len(values), "t") == [v.encode() for v in values]
    assert list(deserialize_bytes_tensor(encode_bytes(values))) == [v.encode() for v in values]


@pytest.mark.parametrize(
    ("raw", "count", "words"),
    [
        (struct.pack("<I", 5) + b"abc", 1, "declares 5 bytes but only 3"),
        (b"\x01\x00", 1, "no 4-byte length prefix"),
        (struct.pack("<I", 1) + b"ab", 1, "1 bytes are left after"),
        (struct.pack("<I", 1) + b"a", 2, "element 1 of 2 has no 4-byte length prefix"),
        (struct.pack("<I", 2**32 - 1), 1, "declares 4294967295 bytes"),
    ],
)
def test_bytes_prefixes_that_lie_are_refused(raw, count, words):
    with pytest.raises(BinaryError, match=words):
        decode_bytes(memoryview(raw), count, "t")


def test_split_body_checks_the_header_length():
    header, tail = split_body(b'{"a": 1}xyz', "8")
    assert bytes(header) == b'{"a": 1}' and bytes(tail) == b"xyz"
    refused = [("-1", "integer"), ("12", "cannot be longer"), ("a", "integer"), ("+8", "integer")]
    # "\uff18" is a full-width 8: a digit to str.isdigit, not ASCII.
    refused += [(" 8", "integer"), ("0_8", "integer"), ("\uff18", "integer")]
    for bad, words in refused:
        with pytest.raises(BinaryError, match=words):
            split_body(b'{"a": 1}xyz', bad)


def test_a_cursor_never_reads_past_the_end():
    cursor = Cursor(memoryview(b"abcdef"))
    assert bytes(cursor.take(4, "x")) == b"abcd" and cursor.left == 2
    with pytest.raises(BinaryError, match=r"declares 3 bytes .* only 2"):
        cursor.take(3, "x")


SIGNATURE = Signature(
    inputs=(
        TensorSpec("mask", "BOOL", (-1, 2)),
        TensorSpec("half", "BF16", (-1, 2)),
        TensorSpec("text", "BYTES", (-1,)),
    ),
    outputs=(TensorSpec("score", "BF16", (-1,)), TensorSpec("label", "BYTES", (-1,))),
)


def _request(mask: bytes, half: torch.Tensor, text: list[str], **extra) -> tuple[dict, memoryview]:
    parts = [mask, tensor_bytes(half), encode_bytes(text)]
    shapes = [[1, 2], [1, 2], [len(text)]]
    inputs = [
        {"name": spec.name, "datatype": spec.datatype, "shape": shape}
        | {"parameters": {"binary_data_size": len(part)}}
        for spec, shape, part in zip(SIGNATURE.inputs, shapes, parts, strict=True)
    ]
    return {"inputs": inputs, **extra}, memoryview(b"".join(parts))


def test_bool_bf16_and_bytes_inputs_decode_exactly():
    half = torch.tensor([[1.5, -2.25]], dtype=torch.bfloat16)
    body, binary = _request(b"\x01\x00", half, ["ünï"])
    parsed = parse_infer_request(body, SIGNATURE, binary=binary)
    assert parsed.inputs["mask"].tolist() == [[True, False]]
    assert torch.equal(parsed.inputs["half"], half)
    assert parsed.inputs["text"] == ["ünï"]


@pytest.mark.parametrize(
    ("mask", "text", "words"),
    [
        (b"\x02\x00", ["a"], "BOOL bytes must be 0 or 1"),
        (b"\x01\x00", None, "not UTF-8"),
    ],
)
def test_bool_bytes_and_text_that_are_not_what_they_claim_are_400(mask, text, words):
    half = torch.zeros(1, 2, dtype=torch.bfloat16)
    body, binary = _request(mask, half, text or ["a"])
    if text is None:
        raw = bytearray(binary)
        raw[-1] = 0xFF  # the text's one byte, now not UTF-8
        binary = memoryview(bytes(raw))
    with pytest.raises(ProtocolError, match=words) as refused:
        parse_infer_request(body, SIGNATURE, binary=binary)
    assert refused.value.status == 400


def test_outputs_go_binary_by_the_request_default_or_their_own_flag():
    half = torch.zeros(1, 2, dtype=torch.bfloat16)
    outputs = {"score": torch.tensor([0.5, -1.0], dtype=torch.bfloat16), "label": ["yes", "no"]}

    def answer(**extra) -> tuple[dict, list[bytes]]:
        body, binary = _request(b"\x00\x01", half, ["a"], **extra)
        parsed = parse_infer_request(body, SIGNATURE, binary=binary)
        return infer_response("m", "1", parsed, outputs)

    response, parts = answer()
    assert parts == [] and response["outputs"][1]["data"] == ["yes", "no"]

    response, parts = answer(parameters={"binary_data_output": True})
    assert [o["parameters"]["binary_data_size"] for o in response["outputs"]] == [4, 13]
    assert torch.equal(
        torch.frombuffer(bytearray(parts[0]), dtype=torch.bfloat16), outputs["score"]
    )
    assert decode_bytes(memoryview(parts[1]), 2, "label") == [b"yes", b"no"]

    response, parts = answer(
        parameters={"binary_data_output": True},
        outputs=[{"name": "label", "parameters": {"binary_data": False}}, {"name": "score"}],
    )
    assert [o["name"] for o in response["outputs"]] == ["label", "score"]
    assert response["outputs"][0]["data"] == ["yes", "no"] and len(parts) == 1


def test_a_request_without_binary_parts_is_unchanged():
    parsed = InferRequest(id=None, inputs={}, rows=1, outputs=None)
    response, parts = infer_response("m", "1", parsed, {"label": ["a"]})
    assert parts == [] and response["outputs"] == [
        {"name": "label", "shape": [1], "datatype": "BYTES", "data": ["a"]}
    ]
