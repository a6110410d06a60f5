"""Run a TrainingJob's replicas as local processes, as the operator runs pods.

Each replica is `python -m torchyard.cli workload train` with the environment the
operator injects (MASTER_ADDR=127.0.0.1, a free MASTER_PORT, WORLD_SIZE, NODE_RANK,
NPROC_PER_NODE, TORCHYARD_SPEC, and the job's identity TORCHYARD_JOB and
TORCHYARD_JOB_UID: one job per `workdir`, so a run again in the same directory is a
restart of the same job) and its own termination log and progress file under
`workdir`; with `recreate`, a failed replica is started again while the others run on.
For tests, benchmarks and trying a spec on one machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchyard.storage import JOB_ENV, JOB_UID_ENV
from torchyard.workloads.report import PERMANENT
from torchyard.workloads.train.launcher import NODE_ADDR_ENV


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
    recreate: int = 0,
) -> list[Replica]:
    """Start every replica of `spec` (camelCase TrainingJobSpec) and wait for all.
    `recreate`: how many times a failed replica other than 0 is started again while the
    others run on, as the operator recreates it with recovery inPlace."""
    replicas = spec.get("parallelism", {}).get("replicas", 1)
    workdir.mkdir(parents=True, exist_ok=True)
    port = str(free_port())
    running = {index: _start(spec, workdir, index, port, env) for index in range(replicas)}
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while any(process.poll() is None for process in running.values()):
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(running[0].args), timeout or 0)
            for index, process in running.items():
                # As the operator: not a permanent failure, and while replica 0 runs.
                ended = process.poll() not in (None, 0, PERMANENT)
                if recreate and index and ended and running[0].poll() is None:
                    recreate -= 1
                    running[index] = _start(spec, workdir, index, port, env, again=True)
            time.sleep(0.1)
    finally:
        for process in running.values():
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
        for index, process in running.items()
    ]


def _start(
    spec: dict[str, Any],
    workdir: Path,
    index: int,
    port: str,
    env: dict[str, str] | None,
    again: bool = False,
) -> subprocess.Popen[bytes]:
    """Replica `index` as a process with the operator's environment; `again`: a
    replacement, whose log follows its predecessor's."""
    replicas = spec.get("parallelism", {}).get("replicas", 1)
    procs = spec.get("parallelism", {}).get("procsPerReplica", 1)
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
        # Names for the elastic rendezvous (recovery inPlace), which ranks the replicas
        # by them: 127.0.0.1 sorts before the others, so replica 0 keeps global rank 0.
        NODE_ADDR_ENV: f"127.0.0.{index + 1}",
        "TORCHYARD_TERMINATION_LOG": str(workdir / f"termination-{index}.json"),
        "TORCHYARD_PROGRESS_FILE": str(workdir / f"progress-{index}.json"),
        # Replicas share this machine's ports: serve no progress unless asked.
        "TORCHYARD_PROGRESS_PORT": "0",
        **(env or {}),
    }
    # A file, not a pipe: a replica must never block on a log nobody reads yet.
    with (workdir / f"replica-{index}.log").open("a" if again else "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "torchyard.cli", "workload", "train"],
            env=replica_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
