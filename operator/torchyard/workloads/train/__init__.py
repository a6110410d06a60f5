"""The TrainingJob workload: data, model or gradient parallelism across pods.

Launch contract (the operator builds each pod accordingly)
-----------------------------------------------------------
Every pod (one per replica) runs `torchyard workload train`. That process is torch's
elastic launcher, `torch.distributed.run` (torchrun) called in-process (launcher.py),
with

    --nnodes=<replicas> --nproc-per-node=<procsPerReplica> --node-rank=$NODE_RANK
    --master-addr=$MASTER_ADDR --master-port=$MASTER_PORT
    --rdzv-backend=static --max-restarts=0 -m torchyard.workloads.train.worker

(with spec.recovery inPlace: c10d rendezvous at the same address; see Rendezvous below)

It starts procsPerReplica worker processes (worker.py), one rank each; global rank =
NODE_RANK * procsPerReplica + local rank (with recovery inPlace, the rendezvous orders
the replicas by name: replica 0's ranks come first, the others' may be in another order).

Environment, set by the operator (the names in api.training.RESERVED_ENV):

- TORCHYARD_SPEC: the TrainingJobSpec as camelCase JSON; every process parses it with
  torchyard.validation.parse_spec;
- MASTER_ADDR, MASTER_PORT: replica 0's stable DNS name (pod hostname under the
  headless Service) and port; replica 0's launcher listens there;
- WORLD_SIZE (all ranks), NODE_RANK (replica index), NPROC_PER_NODE, and the PET_*
  forms torchrun reads (PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, ...);
- optional: TORCHYARD_PROGRESS_FILE (default /tmp/torchyard-progress.json),
  TORCHYARD_PROGRESS_PORT (default 29400, 0 off), TORCHYARD_RENDEZVOUS_TIMEOUT
  (seconds the replicas wait for each other, default 900), TORCHYARD_TERMINATION_LOG.

Without these variables one replica runs on 127.0.0.1 (a developer's shell); tests run
several "pods" as local processes with NODE_RANK 0..N-1 and one MASTER_PORT.

Rendezvous (recovery gang, the default): static, not c10d. The static backend takes
the node rank from NODE_RANK, so replica 0 always holds global rank 0: the rank that
serves progress, writes the artifact and the result is where the operator looks for
them. Its launcher hosts the TCPStore at MASTER_ADDR:MASTER_PORT and the other
replicas retry connecting until it is up (TORCHYARD_RENDEZVOUS_TIMEOUT), whatever
order the pods start in. c10d
rendezvous is for elastic membership and in-place restarts: it assigns node ranks in
order of arrival (rank 0 could land on any pod) and decides which node hosts the
store by matching host names, fragile behind a headless Service. Neither is wanted:
restarts are gang restarts by the operator (--max-restarts=0; a failed rank fails its
pod, the operator replaces every pod of the attempt and training resumes from the
latest checkpoint), and each attempt's pods start a fresh store, so no state of a
failed attempt can leak into the next.

Rendezvous with recovery inPlace: c10d, fixed size (--nnodes=N), --max-restarts =
backoffLimit. Both objections above are met: replica 0 hosts the store because the
launcher says so (is_host), and the rendezvous ranks the nodes by name
(TORCHYARD_NODE_ADDR, the replica's DNS name `<job>-worker-<i>.<job>`), where replica
0's name sorts first, so it keeps global rank 0. When a pod fails, the other agents
restart their workers and wait at the rendezvous while the operator recreates only that
pod; a dead agent leaves the rendezvous when its heartbeats stop. A rank that exits
PERMANENT is not restarted (launcher._give_up_on_permanent_errors), and replica 0's
failure still ends the job's rendezvous: the operator restarts the gang.

Results: rank 0 writes the termination message (torchyard.workloads.report) on
success: {"artifact": {"uri", "digest", "bytes", "format"}, "steps", "finalLoss",
"samplesPerSecond", "resumedFromStep"}. On failure the launcher writes {"reason",
"message", "rank"} and exits PERMANENT (3) if a rank failed for good (bad spec, model
or data, incompatible checkpoint), else 1 (retry: a gang restart).

Progress: see progress.py (rank 0 writes a JSON file; replica 0 serves it at
GET /progress on TORCHYARD_PROGRESS_PORT for the operator to poll).

Checkpoints: see checkpoint.py (every checkpoint.intervalSteps and at the last step,
per-rank files committed atomically by a manifest; resume from the latest is automatic).

Data order: schedule.py (by seed and epoch; a resumed job continues the same order).
Modes: modes/ (data: DDP; model: pipeline stages; gradient: ZeRO-2).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from torchyard.workloads.train.launcher import main as launch

    return launch(argv)
