"""`torchyard workload train`: the pod's process, torch's elastic launcher in-process.

It turns the operator's environment into torchrun arguments, runs
`torch.distributed.run` (the same code as the `torchrun` command) in this process, and
around it: serves replica 0's progress over HTTP, and turns the workers' exits into the
pod's exit code and termination message. See the package docstring for the contract.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchyard.api.training import TrainingJobSpec
from torchyard.storage import JOB_UID_ENV
from torchyard.workloads.report import PERMANENT, RENDEZVOUS_FAILED, PermanentError, write_result
from torchyard.workloads.train.progress import progress_file, progress_port, serve_progress
from torchyard.workloads.train.spec import read_training_spec

log = logging.getLogger("torchyard.train.launcher")

WORKER_MODULE = "torchyard.workloads.train.worker"
RENDEZVOUS_TIMEOUT_ENV = "TORCHYARD_RENDEZVOUS_TIMEOUT"
NODE_ADDR_ENV = "TORCHYARD_NODE_ADDR"
"""recovery inPlace: this replica's resolvable name, its identity at the rendezvous."""
# Replicas may start minutes apart (scheduling, image pulls); the others wait this long
# for replica 0's store before the attempt fails.
DEFAULT_RENDEZVOUS_TIMEOUT = 900
DEFAULT_MASTER_PORT = 29500


@dataclass(frozen=True)
class Launch:
    """This pod's place in the job, from the operator's environment."""

    nnodes: int
    nproc_per_node: int
    node_rank: int
    master_addr: str
    master_port: int
    rendezvous_timeout: int
    in_place: bool = False
    """recovery inPlace: elastic (c10d) rendezvous and restarts inside the pod."""
    max_restarts: int = 0
    node_addr: str | None = None
    run_id: str = "torchyard"

    def torchrun_args(self, log_dir: str | None = None) -> list[str]:
        """torchrun's arguments; with `log_dir`, each rank's stderr is also kept there
        (--tee=2: tracebacks and a C++ abort's message; the log lines, on stdout, reach
        the pod's log as they are), so that a rank killed by a signal can be described
        by its last words."""
        logs = [f"--log-dir={log_dir}", "--tee=2"] if log_dir else []
        return [
            *logs,
            f"--nnodes={self.nnodes}",
            f"--nproc-per-node={self.nproc_per_node}",
            *(self._elastic() if self.in_place else self._static()),
            "--module",
            WORKER_MODULE,
        ]

    def _static(self) -> list[str]:
        return [
            f"--node-rank={self.node_rank}",
            f"--master-addr={self.master_addr}",
            f"--master-port={self.master_port}",
            # Static: node rank = replica index, store on replica 0 (see the package
            # docstring for why not c10d by default).
            "--rdzv-backend=static",
            f"--rdzv-conf=timeout={self.rendezvous_timeout}",
            # Restarts are the operator's: a failed rank fails the pod, and the operator
            # replaces every pod of the attempt together (gang), resuming from the last
            # checkpoint. An in-pod restart could not rejoin the other pods' ranks.
            "--max-restarts=0",
        ]

    def _elastic(self) -> list[str]:
        """c10d rendezvous with a fixed size: when a rank fails, every agent restarts
        its workers and they meet again, the failed pod's replacement included."""
        conf = {
            # Replica 0 hosts the rendezvous store at the master address, named rather
            # than guessed from host names.
            "is_host": "true" if self.node_rank == 0 else "false",
            "join_timeout": self.rendezvous_timeout,
            "read_timeout": self.rendezvous_timeout,
            # A killed pod's agent leaves the rendezvous when its heartbeats stop: 6 s
            # instead of torch's 15 before the others can meet its replacement.
            "keep_alive_interval": 2,
            "keep_alive_max_attempt": 3,
        }
        return [
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={self.master_addr}:{self.master_port}",
            f"--rdzv-id={self.run_id}",
            "--rdzv-conf=" + ",".join(f"{key}={value}" for key, value in conf.items()),
            # The rendezvous ranks nodes by this name: replica 0's sorts first, so it
            # keeps global rank 0 (progress, the result).
            *([f"--local-addr={self.node_addr}"] if self.node_addr else []),
            f"--max-restarts={self.max_restarts}",
        ]


def _first(env: Mapping[str, str], *names: str) -> str | None:
    return next((env[name] for name in names if env.get(name)), None)


def launch_from(env: Mapping[str, str], spec: TrainingJobSpec) -> Launch:
    """Read the launch from MASTER_ADDR, MASTER_PORT, WORLD_SIZE, NODE_RANK and
    NPROC_PER_NODE (or their PET_* forms); absent ones default to the spec's replicas
    and procsPerReplica on 127.0.0.1, so one replica also runs outside a cluster."""
    parallelism = spec.parallelism
    nproc = int(
        _first(env, "NPROC_PER_NODE", "PET_NPROC_PER_NODE") or parallelism.procs_per_replica
    )
    world = _first(env, "WORLD_SIZE")
    nnodes = int(
        _first(env, "PET_NNODES") or (int(world) // nproc if world else parallelism.replicas)
    )
    if world and int(world) != nnodes * nproc:
        raise PermanentError(
            "LaunchMismatch", f"WORLD_SIZE {world} is not {nnodes} nodes x {nproc} processes"
        )
    if (nnodes, nproc) != (parallelism.replicas, parallelism.procs_per_replica):
        raise PermanentError(
            "LaunchMismatch",
            f"the environment launches {nnodes} replicas x {nproc} processes but the spec's "
            f"parallelism asks for {parallelism.replicas} x {parallelism.procs_per_replica}",
        )
    node_rank = int(_first(env, "NODE_RANK", "PET_NODE_RANK") or 0)
    if not 0 <= node_rank < nnodes:
        raise PermanentError("LaunchMismatch", f"NODE_RANK {node_rank} is not in [0, {nnodes})")
    return Launch(
        nnodes=nnodes,
        nproc_per_node=nproc,
        node_rank=node_rank,
        master_addr=_first(env, "MASTER_ADDR", "PET_MASTER_ADDR") or "127.0.0.1",
        master_port=int(_first(env, "MASTER_PORT", "PET_MASTER_PORT") or DEFAULT_MASTER_PORT),
        rendezvous_timeout=int(env.get(RENDEZVOUS_TIMEOUT_ENV, DEFAULT_RENDEZVOUS_TIMEOUT)),
        in_place=spec.recovery == "inPlace",
        max_restarts=spec.backoff_limit,
        node_addr=env.get(NODE_ADDR_ENV) or None,
        run_id=env.get(JOB_UID_ENV) or "torchyard",
    )


def failure_result(
    failures: Mapping[int, Any], last_words: Mapping[int, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Exit code and termination message for failed workers (torch's ProcessFailure by
    global rank). Permanent if any rank said so: its reason and message are kept.
    `last_words`: the end of a rank's stderr, for a rank that left no error file (a
    signal, an abort in C++)."""
    last_words = last_words or {}
    for rank in sorted(failures):
        failure = failures[rank]
        if failure.exitcode == PERMANENT:
            message = failure.error_file_data.get("message")
            extra = message.get("extraInfo", {}) if isinstance(message, dict) else {}
            result = extra.get("torchyard") or {"reason": "PermanentError"}
            return PERMANENT, {**result, "rank": rank}
    # A rank stopped by a signal was most likely stopped by this launcher after another
    # rank failed; a rank that exited with a code of its own failed first-hand.
    rank = min(failures, key=lambda r: (failures[r].exitcode < 0, r))
    return 1, {
        "reason": "WorkerFailed",
        "message": "; ".join(
            _describe(r, failures[r], last_words.get(r, ""))
            for r in [rank, *sorted(set(failures) - {rank})]
        )[:2000],
        "rank": rank,
    }


def _describe(rank: int, failure: Any, stderr: str) -> str:
    how = (
        f"signal {failure.signal_name()}"
        if failure.exitcode < 0
        else f"exit code {failure.exitcode}"
    )
    text = failure.message.get("message") if isinstance(failure.message, dict) else failure.message
    # torch's placeholders for a failure without an error file say nothing useful: the
    # rank's own last words (an abort's C++ message) do.
    placeholder = re.fullmatch(r"Signal \d+ \(\w+\) received by PID \d+", str(text or ""))
    if not text or "pytorch.org/docs" in str(text) or placeholder:
        text = stderr.strip()
    detail = f": {str(text)[-600:]}" if text else ""
    return f"rank {rank} ended with {how}{detail}"


def last_words(log_dir: str, failures: Mapping[int, Any]) -> dict[int, str]:
    """The last lines each failed rank of this pod wrote to stderr (torchrun keeps them
    under log_dir/<run>/attempt_<n>/<local rank>/stderr.log); `failures`: torch's
    ProcessFailure by global rank."""
    found = {}
    for rank, failure in failures.items():
        local = failure.local_rank
        # One attempt_<n> per restart of the workers inside the pod: the last one's.
        paths = Path(log_dir).glob(f"*/attempt_*/{local}/stderr.log")
        path = max(paths, key=lambda p: int(p.parent.parent.name.split("_")[-1]), default=None)
        if path is not None:
            lines = [line for line in _tail(path).splitlines() if line]
            found[rank] = "\n".join(lines[-8:])
    return found


def _tail(path: Path, size: int = 64 * 1024) -> str:
    """The end of a file, without reading a long run's whole log."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launcher %(levelname)s %(message)s")
    try:
        launch = launch_from(os.environ, read_training_spec())
    except PermanentError as error:
        log.error("%s: %s", error.reason, error)
        write_result({"reason": error.reason, "message": str(error)})
        return PERMANENT
    server = None
    if launch.node_rank == 0:
        # A file left by an earlier container of this pod would be served as current.
        progress_file().unlink(missing_ok=True)
        server = serve_progress(progress_file(), progress_port())
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous import RendezvousError
    from torch.distributed.run import parse_args, run

    if launch.in_place:
        _give_up_on_permanent_errors()
        # torch 2.15's shared store skips publishing rank 0's address in a later round
        # of the rendezvous when rank 0's agent was in the earlier one: a replacement
        # pod waited for it until the timeout. Without sharing, every round publishes
        # it and rank 0's worker hosts the workers' store.
        os.environ["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"

    log_dir = tempfile.mkdtemp(prefix="torchyard-ranks-")
    args = launch.torchrun_args(log_dir)
    log.info("torchrun %s", " ".join(args))
    try:
        run(parse_args(args))
        shutil.rmtree(log_dir, ignore_errors=True)  # /tmp is the pod's: keep it small
    except ChildFailedError as failed:
        words = last_words(log_dir, failed.failures)
        code, result = failure_result(failed.failures, words)
        log.error("training failed: %s", json.dumps(result))
        write_result(result)
        return code
    except RendezvousError as error:
        # The replicas did not meet in time, or another replica's launcher ended and
        # closed the rendezvous (recovery inPlace): its pod says why.
        said = f"{type(error).__name__}: {error}"[:2000]
        result = {"reason": RENDEZVOUS_FAILED, "message": said}
        log.error("training failed: %s", json.dumps(result))
        write_result(result)
        return 1
    except SignalException as stopped:
        # Deleted (suspend, a gang restart): the workers were stopped with us.
        log.warning("stopped by %s", stopped.sigval.name)
        return 128 + int(stopped.sigval)
    finally:
        if server is not None:
            server.shutdown()
    return 0


def _give_up_on_permanent_errors() -> None:
    """torchrun restarts failed workers up to --max-restarts whatever their exit code,
    but a rank that exited PERMANENT (a bad spec, record or model) would fail the same
    way every time: the agent then stops at once, and its failure ends the job. torch
    has no hook for this, so the launcher's agent class is replaced by a subclass."""
    from torch.distributed.elastic.agent.server.api import RunResult, WorkerGroup
    from torch.distributed.launcher import api

    class Agent(api.LocalElasticAgent):
        def _monitor_workers(self, worker_group: WorkerGroup) -> RunResult:
            result = super()._monitor_workers(worker_group)
            if any(failure.exitcode == PERMANENT for failure in result.failures.values()):
                self._remaining_restarts = 0
            return result

    api.LocalElasticAgent = Agent  # type: ignore[misc]
