"""Pods as torchyard runs them: restricted, labelled, reporting through a termination message."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from torchyard import factories
from torchyard.api.base import GROUP, ApiModel, ResourceRequirements
from torchyard.api.placement import Placement
from torchyard.images import worker_image
from torchyard.resources.storage_access import StorageAccess, env_entries
from torchyard.storage import JOB_ENV, JOB_UID_ENV

MANAGED_BY = "app.kubernetes.io/managed-by"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
# Non-root IDs of the worker image's user (images/worker).
WORKER_UID = 65532


def owner_labels(kind: str, name: str) -> dict[str, str]:
    """Labels every child carries: who manages it and which object it belongs to."""
    return {MANAGED_BY: "torchyard", f"{GROUP}/{kind.lower()}": name}


def job_identity(kind: str, name: str, uid: str | None) -> dict[str, str]:
    """Env naming the job a pod works for; the artifact it publishes records it, and a
    later attempt of the same job (same uid) may replace it (torchyard.storage)."""
    return {JOB_ENV: f"{kind}/{name}", JOB_UID_ENV: uid} if uid else {}


# Spec fields that shape the pod, not the work: the workload never reads them, and a
# worker image older than the operator (a mirrored, pinned tag) would refuse them as
# unknown fields.
POD_ONLY_FIELDS = ("nodeSelector", "tolerations", "affinity", "priorityClassName", "shmSize")


def workload_spec(spec: ApiModel) -> str:
    """The spec as the workload reads it ($TORCHYARD_SPEC): JSON, without the fields
    that only shape the pods, at the top and in the serving settings."""
    dumped = spec.to_k8s()
    for holder in (dumped, dumped.get("serving"), (dumped.get("registerAs") or {}).get("serving")):
        for key in POD_ONLY_FIELDS:
            if isinstance(holder, dict):
                holder.pop(key, None)
    return json.dumps(dumped, sort_keys=True)


def pod_security_context() -> dict[str, Any]:
    """Pod-level settings required by the restricted Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": WORKER_UID,
        "runAsGroup": WORKER_UID,
        "fsGroup": WORKER_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level settings required by the restricted Pod Security Standard."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def worker_pod(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    resources: ResourceRequirements | None = None,
    image: str | None = None,
    restart_policy: str = "Never",
    volumes: Sequence[dict[str, Any]] = (),
    volume_mounts: Sequence[dict[str, Any]] = (),
    access: StorageAccess | None = None,
    placement: Placement | None = None,
) -> dict[str, Any]:
    """A pod that runs one torchyard workload (`torchyard <args>`) in the worker image.

    The workload writes its result as JSON to the termination message; with
    FallbackToLogsOnError a crash still reports the tail of its log. Without `image`, the
    operator's $TORCHYARD_WORKER_IMAGE or the default worker image (torchyard.images).
    Every pod gets the operator's allowed factories (torchyard.factories.pod_env).
    `access` adds the object storage settings and the ServiceAccount (storage_access);
    `placement` the spec's nodeSelector, tolerations, affinity and priorityClassName.
    """
    access = access or StorageAccess()
    container: dict[str, Any] = {
        "name": "worker",
        "image": image or worker_image(),
        "imagePullPolicy": "IfNotPresent",
        "command": ["torchyard"],
        "args": list(args),
        # The operator's list of allowed factories wins over a variable of the same name.
        "env": env_entries({**(env or {}), **factories.pod_env()}, access),
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # The root filesystem is read-only; torch and the workload need a scratch dir.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *volume_mounts],
    }
    if resources is not None:
        container["resources"] = resources.to_k8s()
    pod_spec: dict[str, Any] = placement.pod_fields() if placement else {}
    if access.service_account_name:
        pod_spec["serviceAccountName"] = access.service_account_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            **pod_spec,
            "restartPolicy": restart_policy,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security_context(),
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}, *volumes],
        },
    }
