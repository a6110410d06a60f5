"""The batch/v1 Job that runs one CompressionJob.

A batch/v1 Job rather than bare pods: the controller-manager then owns retries
(backoffLimit), the deadline (activeDeadlineSeconds) and pod clean-up, all long
battle-tested, and podFailurePolicy turns the workload's "permanent" exit code into an
immediate failure without retries (a missing model or a failed quality gate will not
get better by trying again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchyard.api.compression import CompressionJobSpec
from torchyard.resources.kueue import queue_labels
from torchyard.resources.pods import job_identity, owner_labels, worker_pod, workload_spec
from torchyard.resources.storage_access import storage_access
from torchyard.resources.volumes import claim_volumes, claims_in
from torchyard.storage import DEFAULT_PVC_ROOT, PVC_ROOT_ENV
from torchyard.workloads.report import PERMANENT, SPEC_ENV

KIND = "CompressionJob"
CONTAINER = "worker"


def child_job_name(name: str) -> str:
    return f"{name}-compress"


def artifact_uris(spec: CompressionJobSpec) -> list[str | None]:
    uris: list[str | None] = [spec.model.uri, spec.output.uri]
    if spec.evaluation:
        uris.append(spec.evaluation.dataset.uri)
    if spec.quantize and spec.quantize.calibration:
        uris.append(spec.quantize.calibration.uri)
    if spec.distill:
        uris.append(spec.distill.dataset.uri)
        if spec.distill.student:
            uris.append(spec.distill.student.uri)
    return uris


def compression_job(
    name: str,
    namespace: str,
    spec: CompressionJobSpec,
    uid: str | None = None,
    job_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The child Job; `uid` (the CompressionJob's) is recorded in the artifact it
    publishes, so that a retry recognises its own artifact (torchyard.storage).
    `job_labels` (the CompressionJob's) may name a Kueue queue, which then admits the
    child Job (torchyard.resources.kueue)."""
    labels = owner_labels(KIND, name)
    volumes, mounts = claim_volumes(claims_in(artifact_uris(spec)))
    pod = worker_pod(
        name=child_job_name(name),
        namespace=namespace,
        labels=labels,
        args=["workload", "compress"],
        env={
            SPEC_ENV: workload_spec(spec),
            PVC_ROOT_ENV: DEFAULT_PVC_ROOT,
            **job_identity(KIND, name, uid),
        },
        resources=spec.resources,
        volumes=volumes,
        volume_mounts=mounts,
        access=storage_access(spec.storage, spec.service_account_name),
        placement=spec,
    )
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "completions": 1,
        "parallelism": 1,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": CONTAINER,
                        "operator": "In",
                        "values": [PERMANENT],
                    },
                },
                # Evictions and preemptions are not the workload's fault.
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {"metadata": {"labels": labels}, "spec": pod["spec"]},
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": child_job_name(name),
            "namespace": namespace,
            "labels": {**queue_labels(job_labels), **labels},
        },
        "spec": job_spec,
    }
