"""`torchyard local port-forward`: a Service of the local cluster on a port of this machine.

`kubectl port-forward` needs a kubelet API, which the node agent does not serve, and the
host has no route to ClusterIPs (the agent leaves the node's routes alone). The host
does reach pod IPs on the agent's bridge, so this forwards each connection made to
127.0.0.1:LOCAL to a ready endpoint of the Service, read from its EndpointSlices at
that moment (round robin), as the agent's Service proxy does inside the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Service
from lightkube.resources.discovery_v1 import EndpointSlice

from torchyard.local.agent.proxy import backends, relay


class PortForwardError(RuntimeError):
    """The Service or its port does not exist; the message says which."""


class ServiceForward:
    """Forward 127.0.0.1:`local_port` to the ready pods of one Service port."""

    def __init__(self, kubeconfig: Path, namespace: str, service: str, port: int) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.service = service
        self.port = port
        self._turn = itertools.count()
        self._client: AsyncClient | None = None
        self._open: set[asyncio.Task[Any]] = set()

    async def targets(self) -> list[tuple[str, int]]:
        """(pod IP, port) of the Service port's ready endpoints, now."""
        if self._client is None:
            self._client = AsyncClient(KubeConfig.from_file(str(self.kubeconfig)))
        service = (
            await self._client.get(Service, self.service, namespace=self.namespace)
        ).to_dict()
        ports = [p for p in service["spec"].get("ports") or [] if p["port"] == self.port]
        if not ports:
            raise PortForwardError(
                f"service {self.namespace}/{self.service} has no port {self.port}"
            )
        selector = {"kubernetes.io/service-name": self.service}
        slices = [
            s.to_dict()
            async for s in self._client.list(
                EndpointSlice, namespace=self.namespace, labels=selector
            )
        ]
        return backends(service, ports[0], slices)

    async def check(self) -> None:
        """PortForwardError if the Service or its port does not exist."""
        try:
            await self.targets()
        except ApiError as error:
            raise PortForwardError(
                f"service {self.namespace}/{self.service}: {error.status.message}"
            ) from None

    async def serve(self, local_port: int, ready: threading.Event | None = None) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", local_port)
        if ready is not None:
            ready.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            # Connections still open when forwarding stops end with it.
            for task in list(self._open):
                task.cancel()
            await asyncio.gather(*self._open, return_exceptions=True)
            if self._client is not None:
                await self._client.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            # Forwarding stops: this connection's task ends here, quietly (asyncio logs
            # a cancelled connection callback as an error otherwise).
            writer.close()
        finally:
            self._open.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            choices = await self.targets()
        except Exception:  # a connection must never take the forwarder down
            choices = []
        if not choices:
            writer.close()
            return
        await relay(reader, writer, *choices[next(self._turn) % len(choices)])


@contextlib.contextmanager
def forwarding(
    kubeconfig: Path, namespace: str, service: str, port: int, local_port: int
) -> Iterator[str]:
    """Forward in a background thread while the block runs; yields the local base URL."""
    forward = ServiceForward(kubeconfig, namespace, service, port)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    task: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        task["serve"] = loop.create_task(forward.serve(local_port, ready))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task["serve"])

    thread = threading.Thread(target=run, name="port-forward", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise PortForwardError(f"could not listen on 127.0.0.1:{local_port}")
    try:
        yield f"http://127.0.0.1:{local_port}"
    finally:
        loop.call_soon_threadsafe(task["serve"].cancel)
        thread.join(5)
