"""Regenerate the Python stubs of open_inference.proto, or check that they are current.

    python -m torchyard.oip.generate [--check]

Runs protoc from grpcio-tools (`python -m grpc_tools.protoc`, a command of the test
environment: nothing here imports it) with `operator/` as the include root, so that the
stubs import each other as `torchyard.oip.open_inference_pb2`, then gives the messages a
descriptor pool of their own (see `private_pool`). The stubs are committed: the worker
image needs grpcio and protobuf, never protoc.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
INCLUDE_ROOT = HERE.parents[1]
"""`operator/`: protoc names the proto (and the stubs' imports) relative to it."""
PROTO = HERE / "open_inference.proto"
STUBS = ("open_inference_pb2.py", "open_inference_pb2.pyi", "open_inference_pb2_grpc.py")
MODULE = "open_inference_pb2.py"

_DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = (
    "# torchyard.oip.generate: a pool of this module's own, not protobuf's default one.\n"
    "DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile("
)


def private_pool(module: str) -> str:
    """The generated module with its messages in a descriptor pool of their own.

    tritonclient.grpc and KServe ship their own stubs of the same package `inference`;
    protobuf's default pool refuses a second definition of `inference.ModelInferRequest`
    (from any file), so whichever is imported second would fail to import. The wire does
    not carry the pool: messages of any pool serialise to the same bytes."""
    if module.count(_DEFAULT_POOL) != 1:
        raise RuntimeError(
            f"protoc's output no longer has exactly one {_DEFAULT_POOL!r}: look at what "
            "grpcio-tools generates now and update torchyard.oip.generate"
        )
    return module.replace(_DEFAULT_POOL, _OWN_POOL)


def render() -> dict[str, bytes]:
    """The stubs as they should be, by file name."""
    with tempfile.TemporaryDirectory(prefix="oip-stubs-") as out:
        # A command, not an import: the package imports only what its images install
        # (tests/unit/test_dependencies.py), and grpcio-tools is a test dependency.
        protoc = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{INCLUDE_ROOT}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                str(PROTO.relative_to(INCLUDE_ROOT)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if protoc.returncode != 0:
            raise RuntimeError(
                f"protoc failed on {PROTO} (exit code {protoc.returncode}; grpcio-tools, "
                f"of the test extra, installed?): {protoc.stderr.strip()}"
            )
        generated = Path(out) / HERE.relative_to(INCLUDE_ROOT)
        stubs = {name: (generated / name).read_bytes() for name in STUBS}
    stubs[MODULE] = private_pool(stubs[MODULE].decode()).encode()
    return stubs


def stale(directory: Path = HERE) -> list[Path]:
    """Stubs in `directory` that differ from what `render` gives (or are missing)."""
    return [
        directory / name
        for name, content in render().items()
        if not (directory / name).is_file() or (directory / name).read_bytes() != content
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m torchyard.oip.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        if outdated:
            print(
                "stale gRPC stubs (open_inference.proto changed, or grpcio-tools did): "
                + ", ".join(map(str, outdated))
                + "\nrun `python -m torchyard.oip.generate` and commit the result",
                file=sys.stderr,
            )
            return 1
        return 0
    for name, content in render().items():
        (HERE / name).write_bytes(content)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
