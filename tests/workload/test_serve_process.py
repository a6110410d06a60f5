"""The serving process: refuses a changed artifact, drains on SIGTERM, says why it ended."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch

from tests.workload.serving import (
    FEATURES,
    call,
    eventually,
    free_port,
    in_flight,
    infer_body,
    mlp_artifact,
    refuses_connections,
    serving,
    serving_spec,
    wait_until_ready,
)
from torchyard.workloads.serve.app import main
from torchyard.workloads.serve.config import cpu_limit


def _environment(tmp_path, spec, port) -> dict[str, str]:
    return {
        "TORCHYARD_SPEC": json.dumps(spec),
        "TORCHYARD_PORT": str(port),
        "TORCHYARD_HOST": "127.0.0.1",
        "TORCHYARD_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }


def _termination_message(tmp_path) -> dict:
    return json.loads((tmp_path / "termination-log").read_text())


def test_a_digest_mismatch_is_refused_before_loading_and_never_served(tmp_path, monkeypatch):
    artifact = mlp_artifact(tmp_path)
    # Someone swaps the weights after the version was registered with its digest.
    weights = tmp_path / "digits" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    for key, value in _environment(tmp_path, serving_spec(artifact), free_port()).items():
        monkeypatch.setenv(key, value)
    assert main([]) == 3
    result = _termination_message(tmp_path)
    assert result["reason"] == "DigestMismatch"
    assert artifact.digest in result["message"] and "refused" in result["message"]


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("TORCHYARD_SPEC", '{"model": "digits"}', "spec.version"),
        ("TORCHYARD_PORT", "http", "TORCHYARD_PORT"),
        ("TORCHYARD_FAULT_RATE", "2", "TORCHYARD_FAULT_RATE"),
        ("TORCHYARD_MAX_QUEUE", "0", "TORCHYARD_MAX_QUEUE"),
    ],
)
def test_bad_configuration_is_a_permanent_failure(tmp_path, monkeypatch, variable, value, words):
    environment = _environment(tmp_path, serving_spec(mlp_artifact(tmp_path)), free_port())
    for key, setting in {**environment, variable: value}.items():
        monkeypatch.setenv(key, setting)
    assert main([]) == 3
    result = _termination_message(tmp_path)
    assert result["reason"] == "InvalidSpec" and words in result["message"]


def test_sigterm_drains_in_flight_requests_then_exits_0(tmp_path):
    # A long queue delay keeps the request in flight while SIGTERM arrives and the server
    # stops listening: the longest allowed, so that a loaded machine (CI runs the kind
    # e2e beside it) still sees the request waiting for its batch.
    spec = serving_spec(
        mlp_artifact(tmp_path), batching={"maxBatchSize": 64, "maxQueueDelayMs": 10_000}
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "torchyard.cli", "workload", "serve"],
        env={**os.environ, **_environment(tmp_path, spec, port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(url, alive=lambda: server.poll() is None)
        answers = []
        request = threading.Thread(
            target=lambda: answers.append(
                call("POST", f"{url}/v2/models/digits/infer", infer_body(torch.ones(1, FEATURES)))
            )
        )
        request.start()
        eventually(lambda: in_flight(url) == 1)
        server.send_signal(signal.SIGTERM)
        eventually(lambda: refuses_connections(url))
        assert request.is_alive()  # still waiting for its batch
        request.join(timeout=30)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
        log = server.communicate()[0]
    [(status, response)] = answers
    assert status == 200 and response["outputs"][0]["shape"] == [1, 3]
    assert _termination_message(tmp_path)["reason"] == "Drained"
    assert "draining" in log


def test_during_the_drain_delay_it_answers_but_is_not_ready(tmp_path):
    with serving(tmp_path, serving_spec(mlp_artifact(tmp_path)), drain_delay_s=3.0) as server:
        server.terminate()
        eventually(lambda: call("GET", f"{server.url}/v2/health/ready") == (400, {"ready": False}))
        assert server.infer(infer_body(torch.zeros(1, FEATURES)))[0] == 200
        eventually(lambda: refuses_connections(server.url))


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({}, None),
    ],
)
def test_torch_threads_follow_the_pods_cpu_limit(tmp_path, files, limit):
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert cpu_limit(tmp_path) == limit
