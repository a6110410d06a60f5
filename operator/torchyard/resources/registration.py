"""The ModelVersion a successful job registers for its artifact (spec.registerAs)."""

from __future__ import annotations

import re
from typing import Any

from torchyard.api.base import API_VERSION, GROUP
from torchyard.api.common import StorageSpec
from torchyard.api.modelversion import RegisterAs
from torchyard.resources.pods import MANAGED_BY

REGISTERED_BY = f"{GROUP}/registered-by"
MODEL_LABEL = f"{GROUP}/model"


def version_object_name(model: str, version: str) -> str:
    """digits + v1.2 -> digits-v1-2: a DNS name that sorts with its model."""
    return f"{model}-v{re.sub(r'[^a-z0-9]+', '-', version.lower().lstrip('v'))}"


def model_version(
    register_as: RegisterAs,
    artifact: dict[str, Any],
    namespace: str,
    registered_by: str,
    *,
    storage: StorageSpec | None = None,
    service_account_name: str | None = None,
) -> dict[str, Any]:
    """A ModelVersion for the job's artifact, named after model and version.

    It has no owner reference on purpose: a registered version outlives the job that
    produced it (the job's TTL must not delete what serves). It reads the artifact the
    way the job wrote it: with the job's storage settings and ServiceAccount.
    """
    spec: dict[str, Any] = {
        "model": register_as.model,
        "version": register_as.version,
        "artifact": {
            "uri": artifact["uri"],
            "digest": artifact["digest"],
            "format": artifact.get("format") or "torchyard",
        },
    }
    if register_as.serving is not None:
        spec["serving"] = register_as.serving.to_k8s()
    if register_as.rollout is not None:
        spec["rollout"] = register_as.rollout.to_k8s()
    if storage is not None:
        spec["storage"] = storage.to_k8s()
    if service_account_name:
        spec["serviceAccountName"] = service_account_name
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": version_object_name(register_as.model, register_as.version),
            "namespace": namespace,
            "labels": {
                MANAGED_BY: "torchyard",
                MODEL_LABEL: register_as.model,
                REGISTERED_BY: registered_by,
            },
        },
        "spec": spec,
    }
