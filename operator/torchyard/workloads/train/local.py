"""Run a TrainingJob's replicas as local processes, as the operator runs pods.

Each replica is `python -m torchyard.cli workload train` with the environment the
operator injects (MASTER_ADDR=127.0.0.1, a free MASTER_PORT, WORLD_SIZE, NODE_RANK,
NPROC_PER_NODE, TORCHYARD_SPEC, and the job's identity TORCHYARD_JOB and
TORCHYARD_JOB_UID: one job per `workdir`, so a run again in the same directory is a
restart of the same job) and its own termination log and progress file under
`workdir`. For tests, benchmarks and trying a spec on one machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchyard.storage import JOB_ENV, JOB_UID_ENV


@dataclass(frozen=True)
class Replica:
    index: int
    returncode: int
    log: str
    termination_log: Path
    progress_file: Path

    def result(self) -> dict[str, Any]:
        """The JSON the replica's pod would leave as its termination message."""
        data: dict[str, Any] = json.loads(self.termination_log.read_text())
        return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_replicas(
    spec: dict[str, Any],
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> list[Replica]:
    """Start every replica of `spec` (camelCase TrainingJobSpec) and wait for all."""
    replicas = spec.get("parallelism", {}).get("replicas", 1)
    procs = spec.get("parallelism", {}).get("procsPerReplica", 1)
    workdir.mkdir(parents=True, exist_ok=True)
    port = str(free_port())
    started = []
    for index in range(replicas):
        # A termination log of an earlier run in the same directory is not this run's.
        (workdir / f"termination-{index}.json").unlink(missing_ok=True)
        replica_env = {
            **os.environ,
            "TORCHYARD_SPEC": json.dumps(spec),
            JOB_ENV: f"TrainingJob/{workdir.name}",
            JOB_UID_ENV: str(uuid.uuid5(uuid.NAMESPACE_URL, workdir.resolve().as_uri())),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "WORLD_SIZE": str(replicas * procs),
            "NODE_RANK": str(index),
            "NPROC_PER_NODE": str(procs),
            "TORCHYARD_TERMINATION_LOG": str(workdir / f"termination-{index}.json"),
            "TORCHYARD_PROGRESS_FILE": str(workdir / f"progress-{index}.json"),
            # Replicas share this machine's ports: serve no progress unless asked.
            "TORCHYARD_PROGRESS_PORT": "0",
            **(env or {}),
        }
        # A file, not a pipe: a replica must never block on a log nobody reads yet.
        with (workdir / f"replica-{index}.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "torchyard.cli", "workload", "train"],
                env=replica_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
    try:
        for process in started:
            process.wait(timeout=timeout)
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [
        Replica(
            index=index,
            returncode=process.returncode,
            log=(workdir / f"replica-{index}.log").read_text(),
            termination_log=workdir / f"termination-{index}.json",
            progress_file=workdir / f"progress-{index}.json",
        )
        for index, process in enumerate(started)
    ]
