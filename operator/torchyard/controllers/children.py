"""Compact snapshots of child objects for kopf's in-memory indexes.

Indexes hold what reconciles need (name, creation time, status) rather than whole
bodies: a pod's spec is large, and the operator never reads it back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from torchyard.refusals import controller_uid


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "creationTimestamp": metadata.get("creationTimestamp"),
            # A pod being deleted may still say Ready for seconds: it takes no new traffic.
            "deletionTimestamp": metadata.get("deletionTimestamp"),
            "labels": dict(metadata.get("labels") or {}),
        },
        "status": copy.deepcopy(dict(body.get("status") or {})),
        # Of the spec, only the memory limits (a container killed at its limit is told
        # with the limit it had: podstatus.pod_outcome) and what holds a child back: a
        # pod's scheduling gates, a Job's suspension (Kueue's, while it queues).
        "spec": {
            "containers": [_memory_limit(c) for c in _containers(body)],
            **_held_by(body),
        },
    }


def _held_by(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    held: dict[str, Any] = {}
    if spec.get("schedulingGates"):
        held["schedulingGates"] = copy.deepcopy(list(spec["schedulingGates"]))
    if spec.get("suspend"):
        held["suspend"] = True
    return held


def _containers(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((body.get("spec") or {}).get("containers") or [])


def _memory_limit(container: Mapping[str, Any]) -> dict[str, Any]:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    kept: dict[str, Any] = {"name": container.get("name")}
    if limit is not None:
        kept["resources"] = {"limits": {"memory": limit}}
    return kept


def changed_fields(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a status patch that differs from the current status."""
    return {key: value for key, value in patch.items() if current.get(key) != value}


class CreatedChildren:
    """Children the operator created that the watch has not shown yet (what controller-
    runtime and the Kubeflow operators call expectations). Without them, a reconcile that
    runs between a create and its watch event sees the child missing and creates it
    again: a refused request (409) per child, most of them at scale."""

    def __init__(
        self,
        patience: float = 60.0,
        snap: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.patience = patience
        self._snap = snap or snapshot
        self._created: dict[tuple[str, str], dict[str, tuple[float, dict[str, Any]]]] = {}

    def __len__(self) -> int:
        """Owners with children created and not seen yet."""
        return len(self._created)

    def record(self, owner: tuple[str, str], manifests: list[dict[str, Any]], at: float) -> None:
        pending = self._created.setdefault(owner, {})
        for manifest in manifests:
            pending[manifest["metadata"]["name"]] = (at, self._snap(manifest))

    def with_created(
        self, owner: tuple[str, str], watched: list[dict[str, Any]], at: float
    ) -> list[dict[str, Any]]:
        """The watched children plus those created but not seen yet (given up on after
        `patience` seconds, in case one was deleted before the watch saw it)."""
        pending = self._created.get(owner)
        if not pending:
            return watched
        seen = {child["metadata"]["name"] for child in watched}
        for name, (created, _) in list(pending.items()):
            if name in seen or at - created > self.patience:
                del pending[name]
        if not pending:
            del self._created[owner]
            return watched
        return [*watched, *(child for _, child in pending.values())]

    def forget(self, owner: tuple[str, str]) -> None:
        self._created.pop(owner, None)

    def expire(self, at: float) -> None:
        """Drop what was created more than `patience` ago, whoever owns it: an owner
        deleted before the watch showed its child is never asked about again."""
        for owner, pending in list(self._created.items()):
            for name, (created, _) in list(pending.items()):
                if at - created > self.patience:
                    del pending[name]
            if not pending:
                del self._created[owner]


def owned_entry(
    kind: str, namespace: str, body: Mapping[str, Any]
) -> dict[tuple[str, str], dict[str, Any]]:
    """A child's entry in an index of children, keyed by the uid of its controller of
    `kind`: an object that only carries the owner's name in its labels is nobody's
    child. Empty (not None) so that an entry goes when its ownerReference does."""
    uid = controller_uid(body, kind)
    return {(namespace, uid): snapshot(body)} if uid else {}
