"""The operator's Kubernetes API client (lightkube, async), shared by all controllers.

kopf watches and posts Events with its own client; this one creates children and
writes status through the status subresource. Both authenticate the same way
(KUBECONFIG, else the in-cluster ServiceAccount).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx2
from lightkube import AsyncClient
from lightkube.codecs import from_dict
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import GenericNamespacedResource, create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event as CoreEvent
from lightkube.resources.core_v1 import Service
from lightkube.types import CascadeType, PatchType

from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import KINDS, Kind
from torchyard.controllers.queue import Gone
from torchyard.controllers.transport import AiohttpTransport
from torchyard.refusals import Refusal, is_refusal, owned_by, refused, taken

FIELD_MANAGER = "torchyard-operator"
# Each request gets 10 s to connect, send and read; the wait for a free connection of
# the pool has no limit, since hundreds of reconciles at once queue there, not fail.
TIMEOUT = httpx2.Timeout(10.0, pool=None)
_client: AsyncClient | None = None


class NamespaceGone(Gone):
    """The namespace is being deleted (or is gone): nothing can be created there, and
    retrying will not help; its objects go with it."""


class Refused(Exception):
    """The API server refused to create a child (a 4xx: invalid, quota, admission, RBAC,
    a missing reference), or its name is held by an object its owner does not own.
    Trying again at once will not help: the owner says so in status (torchyard.refusals)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


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
    still at that version: None when it has changed since (409 Conflict), and None when
    it is gone (404: deleted, with its namespace perhaps, while it was reconciled)."""
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
        if error.status.code == 404 or (resource_version is not None and error.status.code == 409):
            return None
        raise
    return written.to_dict()  # type: ignore[no-any-return]


async def set_finalizers(
    kind: Kind, namespace: str, name: str, finalizers: list[str], resource_version: str
) -> dict[str, Any] | None:
    """Replace the object's finalizers, only if it is still at `resource_version`: the
    list is replaced whole, so another writer's change must not be lost. The object as
    written, or None when it changed since (409) or is gone (404)."""
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
    try:
        written = await api().patch(
            RESOURCES[kind.kind], name, patch, namespace=namespace, patch_type=PatchType.MERGE
        )
    except ApiError as error:
        if error.status.code in (404, 409):
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
    NamespaceGone if its namespace is being deleted; Refused if the API server refuses
    the object itself (torchyard.refusals)."""
    try:
        await api().create(from_dict(manifest))
    except ApiError as error:
        code = error.status.code or 0
        if code == 409:
            return False
        if namespace_gone(error):
            raise NamespaceGone(manifest["metadata"].get("namespace")) from error
        if is_refusal(code):
            what = manifest["metadata"]["name"]
            message = error.status.message or ""
            raise Refused(refused(manifest["kind"], what, code, message)) from error
        raise
    return True


async def create_child(
    manifest: dict[str, Any], owners: Collection[str] | None = None, owner: str | None = None
) -> bool:
    """Create a child; False if it exists already and is the owner's: one of its
    ownerReferences carries one of `owners` (default: the uids the manifest's own
    ownerReferences name). An object of that name that is not the owner's is never
    taken over, patched or deleted: Refused with a Conflict naming it. `owner` names
    the owner in that message (default: the manifest's controller)."""
    if await create(manifest):
        return True
    references = manifest["metadata"].get("ownerReferences") or []
    uids = set(owners) if owners is not None else {ref["uid"] for ref in references}
    existing = await read(manifest)
    if existing is None or owned_by(existing, uids):
        return False  # gone meanwhile: the next reconcile creates it
    if owner is None:
        owner = next((f"{r['kind']} {r['name']}" for r in references), "its owner")
    raise Refused(taken(manifest["kind"], manifest["metadata"]["name"], existing, owner))


async def read(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The object a manifest names, as stored; None if there is none."""
    resource = type(from_dict(manifest))
    metadata = manifest["metadata"]
    try:
        found = await api().get(resource, metadata["name"], namespace=metadata.get("namespace"))
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise
    return found.to_dict()  # type: ignore[no-any-return]


async def add_owners(
    resource: type[Service] | type[Deployment],
    namespace: str,
    name: str,
    references: list[dict[str, Any]],
) -> None:
    """Add ownerReferences to a Service or Deployment; a strategic merge patch merges them
    by uid, so the owners it has are kept."""
    await _patch(resource, namespace, name, {"metadata": {"ownerReferences": references}})


async def set_selector(
    namespace: str, name: str, selector: dict[str, str], current: dict[str, str]
) -> None:
    """Make a Service select `selector`: its other keys of `current` are removed (a merge
    patch merges a map)."""
    change: dict[str, str | None] = {key: None for key in current if key not in selector}
    change.update(selector)
    await _patch(Service, namespace, name, {"spec": {"selector": change}})


async def add_service_ports(namespace: str, name: str, ports: list[dict[str, Any]]) -> str | None:
    """Add ports to a Service (merged by port number, so its own stay); the API server's
    refusal, if it refuses (a port of that name or number taken by another's edit), is
    returned, not raised: the model keeps being reconciled without the port."""
    try:
        await _patch(Service, namespace, name, {"spec": {"ports": ports}})
    except ApiError as error:
        if error.status.code not in (403, 422):
            raise
        return str(error.status.message)
    return None


async def _patch(
    resource: type[Service] | type[Deployment], namespace: str, name: str, patch: dict[str, Any]
) -> None:
    try:
        await api().patch(
            resource, name, patch, namespace=namespace, patch_type=PatchType.STRATEGIC
        )
    except ApiError as error:
        if error.status.code != 404:
            raise


async def failed_create_event(namespace: str, uid: str) -> str | None:
    """The message of the latest FailedCreate Event about the object with `uid` (the Job
    controller's, when it cannot create a Job's pod); None when there is none."""
    found: list[tuple[str, str]] = []
    fields = {"involvedObject.uid": uid, "reason": "FailedCreate"}
    async for event in api().list(CoreEvent, namespace=namespace, fields=fields):
        when = event.lastTimestamp or event.eventTime or event.metadata.creationTimestamp
        found.append((str(when or ""), event.message or ""))
    return max(found)[1] if found else None


def namespace_gone(error: ApiError) -> bool:
    """A create refused because its namespace is terminating (403) or gone (404)."""
    details = error.status.details
    if details is None:
        return False
    if error.status.code == 404:
        return details.kind == "namespaces"
    causes = details.causes or []
    return error.status.code == 403 and any(c.reason == "NamespaceTerminating" for c in causes)
