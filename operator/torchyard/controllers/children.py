"""Compact snapshots of child objects for kopf's in-memory indexes.

Indexes hold what reconciles need (name, creation time, status) rather than whole
bodies: a pod's spec is large, and the operator never reads it back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "creationTimestamp": metadata.get("creationTimestamp"),
            "labels": dict(metadata.get("labels") or {}),
        },
        "status": copy.deepcopy(dict(body.get("status") or {})),
    }


def changed_fields(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a status patch that differs from the current status."""
    return {key: value for key, value in patch.items() if current.get(key) != value}
