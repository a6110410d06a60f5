"""Services' ClusterIPs inside pods: a userspace proxy, as kube-proxy's first mode was.

There is no kube-proxy (and no iptables to program), so the agent proxies TCP itself.
It keeps a network namespace of its own on the pod bridge (address .2 of the pod
subnet) where the whole Service CIDR is a local route; pods route the Service CIDR to
it. For each Service port the agent listens on ClusterIP:port in that namespace and
forwards each connection to a ready endpoint (round robin) from the Service's
EndpointSlices. The node's own routes and addresses stay untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
from typing import Any

from torchyard.local.agent import network as net
from torchyard.local.agent.shim import CLONE_NEWNET, setns, setns_fd

log = logging.getLogger(__name__)
Key = tuple[str, int]  # (cluster IP, port)
PROXY_INDEX = 2
BUFFER = 64 * 1024


def backends(
    service: dict[str, Any], port: dict[str, Any], slices: list[dict[str, Any]]
) -> list[tuple[str, int]]:
    """(address, port) of the ready endpoints behind one Service port. Pure."""
    meta = service["metadata"]
    name = port.get("name") or ""
    out = []
    for es in slices:
        labels = es["metadata"].get("labels") or {}
        if es["metadata"]["namespace"] != meta["namespace"]:
            continue
        if labels.get("kubernetes.io/service-name") != meta["name"]:
            continue
        numbers = [p.get("port") for p in es.get("ports") or [] if (p.get("name") or "") == name]
        if not numbers or numbers[0] is None:
            continue
        for endpoint in es.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                out.append((address, int(numbers[0])))
    return sorted(set(out))


def listeners(services: list[dict[str, Any]]) -> dict[Key, tuple[dict[str, Any], dict[str, Any]]]:
    """Every TCP ClusterIP:port to listen on, with its Service and port. Pure."""
    out = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        for port in spec.get("ports") or []:
            if (port.get("protocol") or "TCP") == "TCP":
                out[(ip, int(port["port"]))] = (svc, port)
    return out


class ServiceProxy:
    def __init__(self, network: net.Network, cluster: Any) -> None:
        self.network = network
        self.cluster = cluster
        self._servers: dict[Key, asyncio.Server] = {}
        self._targets: dict[Key, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._turns: dict[Key, itertools.count[int]] = {}
        self._netns = ""
        self._starting: set[asyncio.Task[asyncio.Server]] = set()

    async def setup(self) -> None:
        if not self.network.service_cidr:
            return
        ns = self.network.proxy_netns
        veth = self.network.veth_name(PROXY_INDEX)
        subnet = self.network.subnet
        await net.ip("netns", "del", ns, check=False)
        await net.ip(
            "-batch",
            "-",
            stdin=(
                f"netns add {ns}\n"
                f"link add {veth} type veth peer name eth0 netns {ns}\n"
                f"link set {veth} master {self.network.bridge} up\n"
            ),
        )
        await net.ip(
            "-n",
            ns,
            "-batch",
            "-",
            stdin=(
                f"addr add {subnet.proxy}/{subnet.prefixlen} dev eth0\n"
                "link set eth0 up\n"
                "link set lo up\n"
                # Every Service IP is an address of this namespace (an AnyIP route).
                f"route add local {self.network.service_cidr} dev lo\n"
            ),
        )
        self._netns = f"{net.NETNS_DIR}/{ns}"

    def sync(self) -> None:
        """Listen on what the Services ask for now; stop listening on what they don't."""
        if not self._netns:
            return
        wanted = listeners(self.cluster.all_services())
        self._targets = wanted
        for key in list(self._servers):
            if key not in wanted:
                self._servers.pop(key).close()
                self._turns.pop(key, None)
        for key in wanted:
            if key not in self._servers:
                try:
                    sock = self._listen(key)
                except OSError as error:
                    log.warning("service proxy cannot listen on %s:%d: %s", *key, error)
                    continue
                server = asyncio.get_running_loop().create_task(
                    asyncio.start_server(lambda r, w, key=key: self._serve(key, r, w), sock=sock)
                )
                self._starting.add(server)
                server.add_done_callback(self._starting.discard)
                server.add_done_callback(lambda t, key=key: self._started(key, t))

    def _started(self, key: Key, task: asyncio.Task[asyncio.Server]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        server = task.result()
        if key in self._targets and key not in self._servers:
            self._servers[key] = server
        else:
            server.close()

    def _listen(self, key: Key) -> socket.socket:
        """A listening socket inside the proxy namespace. setns() moves only this
        thread, and nothing else runs on the event loop meanwhile."""
        home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(self._netns, CLONE_NEWNET)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(key)
                sock.listen(128)
                sock.setblocking(False)
            finally:
                setns_fd(home, CLONE_NEWNET, "home")
        finally:
            os.close(home)
        return sock

    async def _serve(
        self, key: Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        target = self._targets.get(key)
        choices = backends(target[0], target[1], self.cluster.all_slices()) if target else []
        if not choices:
            writer.close()
            return
        turn = next(self._turns.setdefault(key, itertools.count()))
        await relay(reader, writer, *choices[turn % len(choices)])

    async def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        if self._netns:
            await net.ip("netns", "del", self.network.proxy_netns, check=False)
            self._netns = ""


async def relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    """Carry one accepted connection to host:port and back until both sides are done."""
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        writer.close()
        return
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        for end in (writer, up_writer):
            with contextlib.suppress(OSError, RuntimeError):
                end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, ConnectionError, RuntimeError):
        # The other side went away; the caller closes both ends.
        pass
