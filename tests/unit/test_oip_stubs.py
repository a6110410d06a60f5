"""The gRPC binding's proto and stubs (torchyard/oip): current, and the same wire as the
stubs that tritonclient and KServe ship, with which they can share a process."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from torchyard.oip import generate, open_inference_pb2

# Prints the serialized descriptor of a client library's stubs, loaded after ours: both
# define the messages of package `inference`, and must live in one process.
_THEIRS = """
import base64, importlib.util, sys
from torchyard.oip import open_inference_pb2, open_inference_pb2_grpc
if sys.argv[1] == "tritonclient":
    from tritonclient.grpc import service_pb2 as theirs
else:
    # By its path: `import kserve` would import a web framework first.
    [root] = importlib.util.find_spec("kserve").submodule_search_locations
    spec = importlib.util.spec_from_file_location(
        "grpc_predict_v2_pb2", f"{root}/protocol/grpc/grpc_predict_v2_pb2.py"
    )
    theirs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(theirs)
request = open_inference_pb2.ModelInferRequest(model_name="m", raw_input_contents=[b"x"])
assert theirs.ModelInferRequest.FromString(request.SerializeToString()).model_name == "m"
print(base64.b64encode(theirs.DESCRIPTOR.serialized_pb).decode())
"""


def test_the_committed_stubs_are_what_protoc_generates_now(tmp_path):
    assert generate.stale() == [], "run `python -m torchyard.oip.generate`"
    for name in generate.STUBS:
        (tmp_path / name).write_bytes(b"stale")
    assert generate.stale(tmp_path) == [tmp_path / name for name in generate.STUBS]
    assert generate.main(["--check"]) == 0


def test_the_messages_live_in_a_pool_of_their_own():
    from google.protobuf import descriptor_pool

    assert open_inference_pb2.DESCRIPTOR.pool is not descriptor_pool.Default()
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName("inference.ModelInferRequest")


def test_a_protoc_output_of_another_shape_is_refused():
    with pytest.raises(RuntimeError, match=r"update torchyard\.oip\.generate"):
        generate.private_pool("DESCRIPTOR = something_else()")


def _shape(file: descriptor_pb2.FileDescriptorProto) -> dict[str, Any]:
    """Every message's fields (number, name, type, label, message type, oneof) and every
    method's types, by full name: what the wire and the JSON mapping depend on."""
    shapes: dict[str, Any] = {}

    def walk(message: descriptor_pb2.DescriptorProto, prefix: str) -> None:
        name = f"{prefix}.{message.name}"
        shapes[name] = {
            field.number: (
                field.name,
                field.type,
                field.label,
                field.type_name,
                field.oneof_index if field.HasField("oneof_index") else None,
            )
            for field in message.field
        }
        for nested in message.nested_type:
            walk(nested, name)

    for message in file.message_type:
        walk(message, f".{file.package}")
    for service in file.service:
        for method in service.method:
            shapes[f"{file.package}.{service.name}/{method.name}"] = (
                method.input_type,
                method.output_type,
            )
    return shapes


def _ours() -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto.FromString(
        open_inference_pb2.DESCRIPTOR.serialized_pb
    )


# KServe 0.21's stubs stop InferParameter at string_param: its client reads a double or
# uint64 parameter as an unknown field (torchyard's server answers with no parameters).
_NOT_IN_THEIRS = {"kserve": {(".inference.InferParameter", 4), (".inference.InferParameter", 5)}}


@pytest.mark.parametrize("library", ["tritonclient", "kserve"])
def test_every_message_and_rpc_is_on_the_wire_as_the_clients_have_it(library):
    printed = subprocess.run(
        [sys.executable, "-c", _THEIRS, library],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    theirs = _shape(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(printed)))
    ours = _shape(_ours())
    assert ours.keys() <= theirs.keys()
    missing = _NOT_IN_THEIRS.get(library, set())
    for name, fields in ours.items():
        if isinstance(fields, dict):
            # Triton's messages may have more fields than the protocol's; never others.
            expected = {n: field for n, field in fields.items() if (name, n) not in missing}
            assert {n: theirs[name].get(n) for n in expected} == expected, name
            # A difference that the clients fix goes from the list.
            assert all(theirs[name].get(n) is None for m, n in missing if m == name)
        else:
            assert theirs[name] == fields, name


def test_the_service_has_the_protocols_six_rpcs():
    (service,) = _ours().service
    assert (_ours().package, service.name) == ("inference", "GRPCInferenceService")
    assert [method.name for method in service.method] == [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    ]
    assert json.dumps(_shape(_ours()))  # plain values only
