"""The cluster's Services and EndpointSlices, as pods on this node need to see them.

They feed the pods' hosts files (hosts.py), the Docker-link environment variables
(podspec.service_links) and the service proxy (proxy.py). Watched with the agent's
infrastructure identity: the Node authorizer lets a node read Services but not
EndpointSlices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from torchyard.local.agent import hosts
from torchyard.local.agent.context import ClusterView
from torchyard.local.agent.informer import Informer
from torchyard.local.agent.kube import Api

# Changes that come together (a Service and its EndpointSlice) make one update.
SETTLE_SECONDS = 0.05


class Cluster(ClusterView):
    def __init__(self, api: Api, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self.service_informer = Informer(api, "Service", self._changed)
        self.slice_informer = Informer(api, "EndpointSlice", self._changed)
        self._entries: dict[str, list[hosts.Entry]] = {}
        self._pending: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        await asyncio.gather(self.service_informer.run(), self.slice_informer.run())

    def all_services(self) -> list[dict[str, Any]]:
        return list(self.service_informer.objects.values())

    def all_slices(self) -> list[dict[str, Any]]:
        return list(self.slice_informer.objects.values())

    def services(self, namespace: str) -> list[dict[str, Any]]:
        return [s for s in self.all_services() if s["metadata"]["namespace"] == namespace]

    def hosts_entries(self, namespace: str) -> list[hosts.Entry]:
        if namespace not in self._entries:
            self._entries[namespace] = hosts.service_entries(
                namespace, self.all_services(), self.all_slices()
            )
        return self._entries[namespace]

    def _changed(self, event: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        self._entries.clear()
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(SETTLE_SECONDS, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._on_change()
