"""Volumes for the artifact URIs a spec names: every pvc:// claim is mounted once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torchyard.storage import DEFAULT_PVC_ROOT, pvc_claim


def claims_in(uris: Iterable[str | None]) -> list[str]:
    """The PersistentVolumeClaims that pvc:// URIs live on, sorted, without repeats."""
    return sorted({claim for uri in uris if uri and (claim := pvc_claim(uri))})


def claim_volumes(claims: Iterable[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts that put each claim at /mnt/pvc/<claim>, where storage looks."""
    volumes, mounts = [], []
    for index, claim in enumerate(claims):
        name = f"pvc-{index}"
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": name, "mountPath": f"{DEFAULT_PVC_ROOT}/{claim}"})
    return volumes, mounts
