"""Training jobs for the workload tests: a small model, a spec, runs as local "pods"
(torchyard.workloads.train.local: one process per replica with the operator's env)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torchyard.api.common import DatasetSource
from torchyard.storage import local_path, read_manifest
from torchyard.workloads.artifacts import save_artifact
from torchyard.workloads.datasets import load_dataset
from torchyard.workloads.models import mlp
from torchyard.workloads.train.local import run_replicas

HIDDEN = (64, 64)  # two stages of about equal size in mode model
STEPS = 20
CHECKPOINT_EVERY = 5


def initial_model(root: Path) -> str:
    """An untrained classifier for digits, as a torchyard artifact; returns its URI."""
    uri = f"file://{root}/initial"
    torch.manual_seed(0)
    save_artifact(
        uri,
        mlp(hidden=HIDDEN),
        base={"factory": "torchyard.workloads.models:mlp", "kwargs": {"hidden": list(HIDDEN)}},
    )
    return uri


def digits_file(root: Path) -> str:
    """The digits training split as a tensor file: the ranks read it without importing
    scikit-learn (2 s of CPU per process on a busy 2-core machine)."""
    data = load_dataset(DatasetSource(uri="builtin://digits"))
    path = root / "digits.pt"
    torch.save({"features": data.features, "labels": data.labels}, path)
    return f"file://{path}"


def training_spec(
    model_uri: str,
    dataset_uri: str,
    root: Path,
    mode: str,
    replicas: int,
    procs: int,
    **hyperparameters: Any,
) -> dict[str, Any]:
    """A TrainingJob spec (camelCase, as the operator passes it) writing under `root`."""
    return {
        "parallelism": {"mode": mode, "replicas": replicas, "procsPerReplica": procs},
        "model": {"uri": model_uri, "format": "torchyard"},
        "dataset": {"uri": dataset_uri},
        "hyperparameters": {
            "maxSteps": STEPS,
            "globalBatchSize": 64,
            "learningRate": 0.01,
            "optimizer": "adamw",
            "seed": 1,
            **hyperparameters,
        },
        "checkpoint": {"uri": f"file://{root}/checkpoints", "intervalSteps": CHECKPOINT_EVERY},
        "output": {"uri": f"file://{root}/model"},
    }


@dataclass
class Run:
    root: Path
    spec: dict[str, Any]
    returncodes: list[int]
    logs: list[str]

    def termination(self, replica: int = 0) -> dict[str, Any]:
        """The JSON the replica's pod would leave as its termination message."""
        return json.loads((self.root / f"termination-{replica}.json").read_text())

    def progress(self) -> dict[str, Any]:
        return json.loads((self.root / "progress-0.json").read_text())

    def output(self) -> Path:
        return local_path(self.spec["output"]["uri"])

    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.output())

    def losses(self) -> list[float]:
        """The loss of every step (the runs are short enough that each step is reported)."""
        history = self.manifest()["training"]["lossHistory"]
        assert [step for step, _ in history] == list(range(1, STEPS + 1))
        return [loss for _, loss in history]

    def checkpoints(self) -> Path:
        return local_path(self.spec["checkpoint"]["uri"])

    def checkpoint_manifest(self, step: int) -> dict[str, Any]:
        return json.loads((self.checkpoints() / f"step-{step:09d}" / "checkpoint.json").read_text())


def launch(
    spec: dict[str, Any],
    root: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    recreate: int = 0,
) -> Run:
    """Start one process per replica, as the operator starts one pod per replica, and
    wait for all of them; `recreate`: replace a failed replica (not 0) that many times,
    as the operator does with recovery inPlace."""
    # The machine's cores are shared by every rank of every "pod".
    env = {"OMP_NUM_THREADS": "1", "TORCHYARD_RENDEZVOUS_TIMEOUT": "60", **(env or {})}
    replicas = run_replicas(spec, root, env=env, timeout=timeout, recreate=recreate)
    return Run(root, spec, [r.returncode for r in replicas], [r.log for r in replicas])
