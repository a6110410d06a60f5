"""The operator's Kubernetes API client (lightkube, async), shared by all controllers.

kopf watches and posts Events with its own client; this one creates children and
writes status through the status subresource. Both authenticate the same way
(KUBECONFIG, else the in-cluster ServiceAccount).
"""

from __future__ import annotations

from typing import Any

import httpx2
from lightkube import AsyncClient
from lightkube.codecs import from_dict
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import GenericNamespacedResource, create_namespaced_resource
from lightkube.resources.batch_v1 import Job
from lightkube.types import CascadeType, PatchType

from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import KINDS, Kind
from torchyard.controllers.queue import Gone
from torchyard.controllers.transport import AiohttpTransport

FIELD_MANAGER = "torchyard-operator"
# Each request gets 10 s to connect, send and read; the wait for a free connection of
# the pool has no limit, since hundreds of reconciles at once queue there, not fail.
TIMEOUT = httpx2.Timeout(10.0, pool=None)
_client: AsyncClient | None = None


class NamespaceGone(Gone):
    """The namespace is being deleted (or is gone): nothing can be created there, and
    retrying will not help; its objects go with it."""


RESOURCES: dict[str, type[GenericNamespacedResource]] = {
    kind.kind: create_namespaced_resource(GROUP, VERSION, kind.kind, kind.plural) for kind in KINDS
}


def api() -> AsyncClient:
    global _client
    if _client is None:
        config = KubeConfig.from_env().get()
        tls = None
        if config.cluster.server.startswith("https:"):
            assert config.user is not None, "the kubeconfig names no user"
            tls = verify_cluster(config.cluster, config.user, config.abs_file)
        _client = AsyncClient(
            config,
            field_manager=FIELD_MANAGER,
            timeout=TIMEOUT,
            transport=AiohttpTransport(tls),
        )
    return _client


async def get_object(kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj = await api().get(RESOURCES[kind.kind], name, namespace=namespace)
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise
    return obj.to_dict()  # type: ignore[no-any-return]


async def patch_status(
    kind: Kind,
    namespace: str,
    name: str,
    status: dict[str, Any],
    resource_version: str | None = None,
) -> dict[str, Any] | None:
    """Merge-patch status through the status subresource (the operator never writes spec)
    and return the object as written. With `resource_version`, only if the object is
    still at that version: None when it has changed since (409 Conflict)."""
    patch: dict[str, Any] = {"status": status}
    if resource_version is not None:
        patch["metadata"] = {"resourceVersion": resource_version}
    try:
        written = await api().patch(
            RESOURCES[kind.kind].Status,
            name,
            patch,
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    except ApiError as error:
        if resource_version is not None and error.status.code == 409:
            return None
        raise
    return written.to_dict()  # type: ignore[no-any-return]


async def delete_object(kind: Kind, namespace: str, name: str) -> None:
    try:
        await api().delete(RESOURCES[kind.kind], name, namespace=namespace)
    except ApiError as error:
        if error.status.code != 404:
            raise


async def delete_child_job(namespace: str, name: str) -> None:
    """Delete a batch/v1 Job and its pods (gone already is fine)."""
    try:
        await api().delete(Job, name, namespace=namespace, cascade=CascadeType.BACKGROUND)
    except ApiError as error:
        if error.status.code != 404:
            raise


async def create(manifest: dict[str, Any]) -> bool:
    """Create an object; False if it already exists (a repeated reconcile is harmless).
    NamespaceGone if its namespace is being deleted."""
    try:
        await api().create(from_dict(manifest))
    except ApiError as error:
        if error.status.code == 409:
            return False
        if namespace_gone(error):
            raise NamespaceGone(manifest["metadata"].get("namespace")) from error
        raise
    return True


def namespace_gone(error: ApiError) -> bool:
    """A create refused because its namespace is terminating (403) or gone (404)."""
    details = error.status.details
    if details is None:
        return False
    if error.status.code == 404:
        return details.kind == "namespaces"
    causes = details.causes or []
    return error.status.code == 403 and any(c.reason == "NamespaceTerminating" for c in causes)
