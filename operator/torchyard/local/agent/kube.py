"""The agent's API calls (lightkube, async), with plain dicts in and out.

Two clients: the node's (system:node:<name>, in system:nodes, so that the Node
authorizer limits it to its own Node, Lease and pods, and the objects those pods
reference) and an infrastructure one for what a node may not do (see config.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from lightkube import AsyncClient, KubeConfig
from lightkube.codecs import from_dict
from lightkube.core.exceptions import ApiError
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import (
    ConfigMap,
    Event,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    Secret,
    Service,
    ServiceAccountToken,
)
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.resources.storage_v1 import StorageClass
from lightkube.types import PatchType

log = logging.getLogger(__name__)
FIELD_MANAGER = "torchyard-agent"
ALL = "*"

KINDS: dict[str, Any] = {
    "ConfigMap": ConfigMap,
    "Secret": Secret,
    "PersistentVolumeClaim": PersistentVolumeClaim,
    "PersistentVolume": PersistentVolume,
    "Pod": Pod,
    "Node": Node,
    "Lease": Lease,
    "Service": Service,
    "EndpointSlice": EndpointSlice,
    "StorageClass": StorageClass,
}
_CLUSTER_SCOPED = {"PersistentVolume", "Node", "StorageClass"}


def client(kubeconfig: Path) -> AsyncClient:
    return AsyncClient(config=KubeConfig.from_file(str(kubeconfig)), field_manager=FIELD_MANAGER)


def code(error: ApiError) -> int:
    return int(getattr(error.status, "code", 0) or 0)


class Api:
    def __init__(self, api: AsyncClient) -> None:
        self.api = api

    async def close(self) -> None:
        await self.api.close()

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        res = KINDS[kind]
        try:
            if kind in _CLUSTER_SCOPED:
                obj = await self.api.get(res, name)
            else:
                obj = await self.api.get(res, name, namespace=namespace)
        except ApiError as error:
            if code(error) == 404:
                return None
            raise
        return obj.to_dict()  # type: ignore[no-any-return]

    async def list(
        self,
        kind: str,
        namespace: str | None = ALL,
        fields: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object, and the resourceVersion to watch from."""
        res = KINDS[kind]
        if kind in _CLUSTER_SCOPED:
            listing = self.api.list(res, fields=dict(fields or {}))
        else:
            listing = self.api.list(res, namespace=namespace, fields=dict(fields or {}))
        items = [obj.to_dict() async for obj in listing]
        return items, listing.resourceVersion

    async def watch(
        self,
        kind: str,
        resource_version: str,
        namespace: str | None = ALL,
        fields: Mapping[str, str] | None = None,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        res = KINDS[kind]
        kwargs: dict[str, Any] = {
            "fields": dict(fields or {}),
            "resource_version": resource_version,
            "server_timeout": 300,
        }
        if kind not in _CLUSTER_SCOPED:
            kwargs["namespace"] = namespace
        async for event, obj in self.api.watch(res, **kwargs):
            yield event, obj.to_dict()

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create; None if it exists already."""
        try:
            obj = await self.api.create(from_dict(manifest))
        except ApiError as error:
            if code(error) == 409:
                return None
            raise
        return obj.to_dict()  # type: ignore[no-any-return]

    async def patch(
        self,
        kind: str,
        name: str,
        body: dict[str, Any],
        namespace: str | None = None,
        status: bool = False,
        strategic: bool = False,
    ) -> dict[str, Any]:
        res = KINDS[kind].Status if status else KINDS[kind]
        patch_type = PatchType.STRATEGIC if strategic else PatchType.MERGE
        if kind in _CLUSTER_SCOPED:
            obj = await self.api.patch(res, name, body, patch_type=patch_type)
        else:
            obj = await self.api.patch(res, name, body, namespace=namespace, patch_type=patch_type)
        return obj.to_dict()  # type: ignore[no-any-return]

    async def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        try:
            if kind in _CLUSTER_SCOPED:
                await self.api.delete(KINDS[kind], name)
            else:
                await self.api.delete(KINDS[kind], name, namespace=namespace)
        except ApiError as error:
            if code(error) != 404:
                raise

    # -- what only the node does ----------------------------------------------------

    async def patch_pod_status(
        self, namespace: str, name: str, uid: str, status: dict[str, Any]
    ) -> None:
        # Strategic merge: conditions merge by type, so the scheduler's PodScheduled
        # and others' conditions stay. The uid makes a same-named new pod refuse it.
        await self.api.patch(
            Pod.Status,
            name,
            {"metadata": {"uid": uid}, "status": status},
            namespace=namespace,
            patch_type=PatchType.STRATEGIC,
        )

    async def delete_pod_now(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's last word on a pod: its processes are gone, release the object."""
        # lightkube's delete() sends no body; the preconditions (only this pod, not a
        # new one with the same name) travel in DeleteOptions, so build the request.
        generic = self.api._client
        request = generic.prepare_request(
            "delete", res=Pod, name=name, namespace=namespace, params={"gracePeriodSeconds": 0}
        )
        request.data = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        try:
            response = await generic.send(generic.build_adapter_request(request))
            generic.handle_response("delete", response, request)
        except ApiError as error:
            if code(error) not in (404, 409):
                raise

    async def token(
        self,
        namespace: str,
        account: str,
        audience: str | None,
        seconds: int,
        pod: Mapping[str, Any],
    ) -> str:
        request = ServiceAccountToken.from_dict(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "metadata": {"name": account, "namespace": namespace},
                "spec": {
                    "audiences": [audience] if audience else [],
                    "expirationSeconds": seconds,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": pod["metadata"]["name"],
                        "uid": pod["metadata"]["uid"],
                    },
                },
            }
        )
        result = await self.api.create(request, account, namespace=namespace)
        return str(result.status.token)

    async def event(self, manifest: dict[str, Any]) -> None:
        try:
            await self.api.create(Event.from_dict(manifest))
        except (TimeoutError, ApiError, OSError) as error:
            # Events are best effort, as in the kubelet.
            log.debug("event not recorded: %s", error)
