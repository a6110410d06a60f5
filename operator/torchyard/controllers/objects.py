"""The latest known copy of each object the operator reconciles, without an API read.

Two sources: the watch (a kopf index of the kind, updated on every event) and the
operator's own status writes (the API server answers each with the new object). A
reconcile that starts right after a write, before the watch has delivered it, would
otherwise decide from the copy before that write and repeat it. The newer copy wins
by resourceVersion; status writes carry that version as a precondition, so a decision
made from a copy that is still out of date is refused (409) and made again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torchyard.resources.kueue import QUEUED_KINDS, queue_labels

Key = tuple[str, str, str]
_written: dict[Key, dict[str, Any]] = {}


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """What reconciles read: identity, the labels that name a Kueue queue, spec and
    status. Not managedFields nor kopf's annotations (a copy of the whole spec), which
    would double what the index holds."""
    metadata = body.get("metadata") or {}
    kept = (
        "name",
        "namespace",
        "uid",
        "generation",
        "resourceVersion",
        "deletionTimestamp",
        "finalizers",
    )
    compacted = {key: metadata[key] for key in kept if key in metadata}
    queued = queue_labels(metadata.get("labels")) if body.get("kind") in QUEUED_KINDS else {}
    if queued:
        compacted["labels"] = queued
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": compacted,
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }


def _version(body: Mapping[str, Any]) -> int:
    # resourceVersion is opaque by contract; every etcd3-backed API server issues etcd
    # revisions, which order. A non-numeric one counts as oldest, so the watch wins.
    try:
        return int(body["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return -1


def remember(kind: str, body: Mapping[str, Any]) -> None:
    """A copy the API server returned to one of the operator's own requests."""
    metadata = body["metadata"]
    _written[(kind, metadata["namespace"], metadata["name"])] = compact(body)


def latest(
    kind: str, namespace: str, name: str, indexed: Iterable[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The newer of the watch's copy and the last written one. None when the watch does
    not hold the object: deleted (a written copy must not bring it back) or not seen yet;
    the caller asks the API."""
    key = (kind, namespace, name)
    watched = next(iter(indexed), None)
    written = _written.get(key)
    if watched is None:
        _written.pop(key, None)
        return None
    if written is None or _version(watched) >= _version(written):
        _written.pop(key, None)  # the watch has caught up with the write
        return dict(watched)
    return written
