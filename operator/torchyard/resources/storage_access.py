"""What a pod needs to reach object storage (spec.storage.s3, spec.serviceAccountName).

The endpoint and region are plain values; the keys are `secretKeyRef`s to the Secret the
spec names, so that the kubelet puts them into the container's environment and they
appear nowhere else: not in the pod's spec, not in the operator's memory or logs.
Without a Secret the pod's ServiceAccount (IRSA, workload identity) or the node supply
credentials, as the AWS SDKs look for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torchyard.api.common import StorageSpec
from torchyard.s3 import (
    ACCESS_KEY_ENV,
    ENDPOINT_ENV,
    REGION_ENVS,
    SECRET_KEY_ENV,
    SESSION_TOKEN_ENV,
)

# Key in the Secret -> environment variable (the same names, as AWS tools expect), and
# whether the key may be missing (a session token is only there for temporary keys).
CREDENTIAL_KEYS = ((ACCESS_KEY_ENV, False), (SECRET_KEY_ENV, False), (SESSION_TOKEN_ENV, True))


@dataclass(frozen=True)
class StorageAccess:
    """Environment and identity of the pods of one object."""

    values: dict[str, str] = field(default_factory=dict)
    """Plain variables: the endpoint and the region."""
    secret_refs: list[dict[str, Any]] = field(default_factory=list)
    """Container env entries whose values the kubelet reads from the Secret."""
    service_account_name: str | None = None

    @property
    def names(self) -> set[str]:
        return set(self.values) | {ref["name"] for ref in self.secret_refs}


def storage_access(
    storage: StorageSpec | None, service_account_name: str | None = None
) -> StorageAccess:
    s3 = storage.s3 if storage else None
    if s3 is None:
        return StorageAccess(service_account_name=service_account_name)
    values: dict[str, str] = {}
    if s3.endpoint:
        values[ENDPOINT_ENV] = s3.endpoint
    if s3.region:
        values.update(dict.fromkeys(REGION_ENVS, s3.region))
    refs = []
    if s3.credentials_secret:
        for key, optional in CREDENTIAL_KEYS:
            ref: dict[str, Any] = {"name": s3.credentials_secret, "key": key}
            if optional:
                ref["optional"] = True
            refs.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return StorageAccess(values, refs, service_account_name)


def without(env: Mapping[str, str], access: StorageAccess) -> dict[str, str]:
    """`env` less the variables storage access sets: spec.storage wins over a plain
    variable of the same name in a user's env list (one source for each setting)."""
    return {name: value for name, value in env.items() if name not in access.names}


def env_entries(env: Mapping[str, str], access: StorageAccess) -> list[dict[str, Any]]:
    """A container's env: the plain variables, then the storage settings."""
    plain = {**without(env, access), **access.values}
    entries: Sequence[dict[str, Any]] = [{"name": k, "value": v} for k, v in plain.items()]
    return [*entries, *access.secret_refs]
