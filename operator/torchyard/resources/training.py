"""Pods and the headless Service of a TrainingJob, Kubeflow-style environment included.

Pods are created directly (not through a Job or StatefulSet) because gang semantics need
it: when any replica fails, every replica of that attempt is replaced together and the
job resumes from its last checkpoint (with recovery inPlace, only the failed replica);
the operator, not the container runtime, counts those restarts (a container restart is
not a job restart: Kubeflow #2045).
"""

from __future__ import annotations

from typing import Any

from torchyard.api.training import TrainingJobSpec
from torchyard.resources.kueue import PodGroup
from torchyard.resources.pods import job_identity, owner_labels, worker_pod, workload_spec
from torchyard.resources.storage_access import storage_access
from torchyard.resources.volumes import claim_volumes, claims_in
from torchyard.storage import DEFAULT_PVC_ROOT, PVC_ROOT_ENV
from torchyard.workloads.report import SPEC_ENV
from torchyard.workloads.train.launcher import NODE_ADDR_ENV

KIND = "TrainingJob"
MASTER_PORT = 29500
PROGRESS_PORT = 29400
REPLICA_LABEL = "torchyard.io/replica-index"
ATTEMPT_LABEL = "torchyard.io/attempt"


def pod_name(job: str, replica: int) -> str:
    return f"{job}-worker-{replica}"


def service_name(job: str) -> str:
    return job


def replica_address(job: str, replica: int) -> str:
    """A replica's stable DNS name under the headless Service (hostname.subdomain); the
    pod's DNS search path (or the local agent's hosts file) completes it."""
    return f"{pod_name(job, replica)}.{service_name(job)}"


def master_address(job: str) -> str:
    return replica_address(job, 0)


def training_env(
    job: str, namespace: str, spec: TrainingJobSpec, replica: int, uid: str | None = None
) -> dict[str, str]:
    procs = spec.parallelism.procs_per_replica
    replicas = spec.parallelism.replicas
    master = master_address(job)
    injected = {
        "MASTER_ADDR": master,
        "MASTER_PORT": str(MASTER_PORT),
        "WORLD_SIZE": str(replicas * procs),
        "NODE_RANK": str(replica),
        "NPROC_PER_NODE": str(procs),
        # torchrun reads PET_* as defaults for its flags, as with Kubeflow's PyTorchJob.
        "PET_NNODES": str(replicas),
        "PET_NPROC_PER_NODE": str(procs),
        "PET_NODE_RANK": str(replica),
        "PET_MASTER_ADDR": master,
        "PET_MASTER_PORT": str(MASTER_PORT),
        # Recovery in place: this replica's name in the elastic rendezvous, which ranks
        # the replicas by it (replica 0's name sorts first: it keeps global rank 0).
        NODE_ADDR_ENV: replica_address(job, replica),
        SPEC_ENV: workload_spec(spec),
        PVC_ROOT_ENV: DEFAULT_PVC_ROOT,
        **job_identity(KIND, job, uid),
    }
    # The API refuses user variables with these names, so nothing is overridden here.
    return {**{env.name: env.value for env in spec.env}, **injected}


def artifact_uris(spec: TrainingJobSpec) -> list[str | None]:
    return [
        spec.model.uri,
        spec.dataset.uri,
        spec.output.uri,
        spec.checkpoint.uri if spec.checkpoint else None,
    ]


def training_pod(
    job: str,
    namespace: str,
    spec: TrainingJobSpec,
    replica: int,
    attempt: int,
    uid: str | None = None,
    group: PodGroup | None = None,
) -> dict[str, Any]:
    """Replica `replica` of attempt `attempt`; `uid` (the TrainingJob's) is recorded in
    the artifact replica 0 publishes, so that a gang restart after it published
    recognises its own artifact (torchyard.storage). With a Kueue queue, `group`
    makes the replicas started together one pod group (torchyard.resources.kueue)."""
    labels = {
        **(group.labels if group else {}),
        **owner_labels(KIND, job),
        REPLICA_LABEL: str(replica),
        ATTEMPT_LABEL: str(attempt),
    }
    volumes, mounts = claim_volumes(claims_in(artifact_uris(spec)))
    # Memory-backed and sized from the spec: a runtime's own /dev/shm is 64Mi, too small
    # for NCCL's buffers or DataLoader workers passing batches.
    volumes.append(
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": str(spec.shm_size)}}
    )
    mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    pod = worker_pod(
        name=pod_name(job, replica),
        namespace=namespace,
        labels=labels,
        args=["workload", "train"],
        env=training_env(job, namespace, spec, replica, uid),
        resources=spec.resources,
        volumes=volumes,
        volume_mounts=mounts,
        access=storage_access(spec.storage, spec.service_account_name),
        placement=spec,
    )
    if group:
        pod["metadata"]["annotations"] = dict(group.annotations)
    pod["spec"]["hostname"] = pod_name(job, replica)
    pod["spec"]["subdomain"] = service_name(job)
    pod["spec"]["containers"][0]["ports"] = [
        {"name": "rendezvous", "containerPort": MASTER_PORT},
        {"name": "progress", "containerPort": PROGRESS_PORT},
    ]
    return pod


def headless_service(job: str, namespace: str) -> dict[str, Any]:
    labels = owner_labels(KIND, job)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_name(job), "namespace": namespace, "labels": labels},
        "spec": {
            "clusterIP": "None",
            "selector": labels,
            # Rendezvous happens before any pod is ready: publish addresses at once.
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": MASTER_PORT, "targetPort": MASTER_PORT}],
        },
    }
