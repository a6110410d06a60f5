"""Object builders for tests: one way to write the Kubernetes objects a test feeds the
operator, in place of a dict-making helper per test file.

After Kueue's test wrappers (`MakeJob("job", "ns").Suspend(true).Obj()`): a builder
starts from the least an object of its kind has, each call says one thing about it and
returns the builder, and `obj()` hands out a fresh dict::

    pod("train-worker-0", "team-a").owned_by("TrainingJob", "train", "u1").phase("Running").obj()

`wrap(body)` continues from an object something else built (a pod that
torchyard.resources made, to give it the status a kubelet would write).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Self

from torchyard.api.base import API_VERSION

WORKER = "worker"
"""The container torchyard's workloads run in."""


class Builder:
    """Any Kubernetes object: metadata, and a spec and status once something sets them."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self._body.setdefault("metadata", {})

    @classmethod
    def wrap(cls, body: dict[str, Any]) -> Self:
        """Continue from a copy of an object built elsewhere."""
        return cls(copy.deepcopy(body))

    def clone(self) -> Self:
        """A builder of its own from here on (Kueue's Clone()): for variants of one object."""
        return type(self).wrap(self._body)

    def obj(self) -> dict[str, Any]:
        """The object as a fresh dict: later calls on the builder do not change it."""
        return copy.deepcopy(self._body)

    @property
    def _metadata(self) -> dict[str, Any]:
        return self._body["metadata"]

    @property
    def _status(self) -> dict[str, Any]:
        return self._body.setdefault("status", {})

    def uid(self, uid: str) -> Self:
        self._metadata["uid"] = uid
        return self

    def generation(self, generation: int) -> Self:
        self._metadata["generation"] = generation
        return self

    def resource_version(self, version: str) -> Self:
        self._metadata["resourceVersion"] = version
        return self

    def created(self, timestamp: str) -> Self:
        """Its creationTimestamp, as the API server writes it (RFC 3339, UTC)."""
        self._metadata["creationTimestamp"] = timestamp
        return self

    def labels(self, labels: Mapping[str, str] | None = None, /, **more: str) -> Self:
        """Labels, as a mapping (keys such as `torchyard.io/model`) or by Python name."""
        self._metadata.setdefault("labels", {}).update(labels or {}, **more)
        return self

    def label(self, key: str, value: str) -> Self:
        self._metadata.setdefault("labels", {})[key] = value
        return self

    def annotation(self, key: str, value: str) -> Self:
        self._metadata.setdefault("annotations", {})[key] = value
        return self

    def managed_by(self, manager: str) -> Self:
        """A managedFields entry, as a server-side or client-side apply leaves it."""
        self._metadata.setdefault("managedFields", []).append({"manager": manager})
        return self

    def owned_by(
        self,
        kind: str,
        name: str,
        uid: str | None = None,
        *,
        controller: bool = True,
        api_version: str = API_VERSION,
    ) -> Self:
        """An ownerReference; a uid of None leaves it out (a hand-written reference)."""
        reference: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name}
        if uid is not None:
            reference["uid"] = uid
        reference["controller"] = controller
        self._metadata.setdefault("ownerReferences", []).append(reference)
        return self

    def spec(self, **fields: Any) -> Self:
        self._body.setdefault("spec", {}).update(fields)
        return self

    def status(self, **fields: Any) -> Self:
        self._status.update(fields)
        return self

    def phase(self, phase: str) -> Self:
        self._status["phase"] = phase
        return self

    def condition(self, type: str, reason: str, message: str = "", status: str = "True") -> Self:
        self._status.setdefault("conditions", []).append(
            {"type": type, "status": status, "reason": reason, "message": message}
        )
        return self


def _new(api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


class PodBuilder(Builder):
    """A core/v1 Pod, and what its kubelet writes to its status."""

    def _container(self, name: str) -> dict[str, Any]:
        containers = self._body.setdefault("spec", {}).setdefault("containers", [])
        found = next((c for c in containers if c.get("name") == name), None)
        if found is None:
            found = {"name": name}
            containers.append(found)
        return found

    def container(
        self, name: str = WORKER, image: str = "worker", limits: dict[str, str] | None = None
    ) -> Self:
        container = self._container(name)
        container["image"] = image
        if limits is not None:
            container.setdefault("resources", {})["limits"] = dict(limits)
        return self

    def empty_dir(self, name: str) -> Self:
        self._body.setdefault("spec", {}).setdefault("volumes", []).append(
            {"name": name, "emptyDir": {}}
        )
        return self

    def ready(self, ready: bool = True) -> Self:
        """The Ready condition (and a Running phase unless one was set)."""
        self._status.setdefault("phase", "Running")
        conditions = self._status.setdefault("conditions", [])
        conditions[:] = [c for c in conditions if c.get("type") != "Ready"]
        conditions.append({"type": "Ready", "status": "True" if ready else "False"})
        return self

    def terminated(
        self,
        exit_code: int,
        reason: str | None = None,
        message: str | None = None,
        container: str = WORKER,
    ) -> Self:
        """The container ended with `exit_code`; `message` is its termination message."""
        state: dict[str, Any] = {"exitCode": exit_code}
        if reason is not None:
            state["reason"] = reason
        if message is not None:
            state["message"] = message
        statuses = self._status.setdefault("containerStatuses", [])
        statuses[:] = [s for s in statuses if s.get("name") != container]
        statuses.append({"name": container, "state": {"terminated": state}})
        return self


def pod(name: str, namespace: str | None = None) -> PodBuilder:
    return PodBuilder(_new("v1", "Pod", name, namespace))


def batch_job(name: str, namespace: str | None = None) -> Builder:
    """A batch/v1 Job (what a CompressionJob runs its workload in)."""
    return Builder(_new("batch/v1", "Job", name, namespace))


def service(name: str, namespace: str | None = None) -> Builder:
    return Builder(_new("v1", "Service", name, namespace))


def deployment(name: str, namespace: str | None = None) -> Builder:
    return Builder(_new("apps/v1", "Deployment", name, namespace))


def resource_quota(name: str, namespace: str | None, hard: Mapping[str, str]) -> Builder:
    return Builder(_new("v1", "ResourceQuota", name, namespace)).spec(hard=dict(hard))


def training_job(name: str, namespace: str | None = None) -> Builder:
    return Builder(_new(API_VERSION, "TrainingJob", name, namespace))


def model_version(model: str, version: str, namespace: str | None = None) -> Builder:
    """A ModelVersion of `model`, named `{model}-v{version}` as the tests name them; its
    spec names the model and version, and spec() adds the rest (artifact, serving)."""
    name = f"{model}-v{version}"
    return Builder(_new(API_VERSION, "ModelVersion", name, namespace)).spec(
        model=model, version=version
    )
