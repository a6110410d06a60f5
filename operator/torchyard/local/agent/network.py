"""Pod networking: one bridge on the node, one network namespace and veth pair per pod.

    node (host netns)                     pod netns (ip netns NAME)
    bridge <bridge> 10.244.0.1/24  <--->  veth <prefix><n>  ==  eth0 10.244.0.<n>/24

Pods reach each other through the bridge (layer 2, no forwarding or NAT), and the node
reaches them at their IPs (probes, the service proxy). Pods get no default route:
their traffic stays on this machine. Everything is done with iproute2 (`ip`), and
everything is named with the agent's prefix so that a restart can find leftovers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from torchyard.local.agent import procs

log = logging.getLogger(__name__)
NETNS_DIR = "/run/netns"


class NetworkError(RuntimeError):
    pass


@dataclass(frozen=True)
class Subnet:
    """The pod subnet: .1 is the node (bridge), .2 the service proxy, the rest pods."""

    cidr: str

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def proxy(self) -> str:
        return str(self.network.network_address + 2)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def pod_addresses(self) -> list[str]:
        hosts = list(self.network.hosts())
        return [str(ip) for ip in hosts[2:]]


class Allocator:
    """Pod IPs in turn round the subnet, as CNI's host-local IPAM gives them: an address
    just released is the last one given again. Given again at once, it would reach the
    new pod while others still hold the old pod's connections (a router's pooled
    keep-alive connection, answered with a reset). Pure bookkeeping."""

    def __init__(self, subnet: Subnet) -> None:
        self._free = subnet.pod_addresses()
        self._used: dict[str, str] = {}
        self._next = 0

    def allocate(self, owner: str) -> str:
        for ip, who in self._used.items():
            if who == owner:
                return ip
        count = len(self._free)
        for step in range(count):
            turn = (self._next + step) % count
            ip = self._free[turn]
            if ip not in self._used:
                self._used[ip] = owner
                self._next = (turn + 1) % count
                return ip
        raise NetworkError("no free pod IP left in the pod subnet")

    def release(self, ip: str) -> None:
        self._used.pop(ip, None)

    def index(self, ip: str) -> int:
        """A small number unique to the IP, for interface names."""
        return int(ipaddress.IPv4Address(ip)) & 0xFFFF


def pod_mac(pod_ip: str) -> str:
    """The pod's MAC address, made from its IP as Docker makes them (02:42 and the four
    bytes): a later pod with the same IP has the same MAC, so the ARP entries that other
    pods and the Service proxy still hold for the IP stay right."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(pod_ip).packed)


def _warn_about_bridge_firewall(bridge: str) -> None:
    """With br_netfilter loaded, bridged pod-to-pod traffic crosses the host's iptables
    FORWARD chain, which Docker hosts set to DROP; say how to let it through rather
    than change the host's firewall behind its owner's back."""
    if not (shutil.which("iptables") or shutil.which("nft")):
        return  # no firewall tooling, no rules to drop anything
    try:
        calls = Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip()
    except OSError:
        return
    if calls == "1":
        log.warning(
            "net.bridge.bridge-nf-call-iptables is 1: if the host firewall drops forwarded "
            "traffic, pods cannot reach each other; allow it with "
            "`iptables -I FORWARD -i %s -o %s -j ACCEPT`",
            bridge,
            bridge,
        )


async def ip(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run iproute2; raise NetworkError with its message when it fails."""
    process = await asyncio.create_subprocess_exec(
        "ip",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if check and process.returncode:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


@dataclass
class Network:
    bridge: str
    subnet: Subnet
    prefix: str
    # The Service CIDR, routed to the service proxy's namespace.
    service_cidr: str | None = None

    def netns_name(self, pod_uid: str) -> str:
        return f"{self.prefix}-{pod_uid}"

    def netns_path(self, pod_uid: str) -> str:
        return f"{NETNS_DIR}/{self.netns_name(pod_uid)}"

    def veth_name(self, index: int) -> str:
        return f"{self.prefix}{index}"[:15]

    @property
    def proxy_netns(self) -> str:
        return f"{self.prefix}-services"

    # -- the node side -------------------------------------------------------------

    async def setup(self) -> None:
        if shutil.which("ip") is None:
            raise NetworkError("the node agent needs iproute2 (`ip`) for pod networking")
        await self.cleanup()
        _warn_about_bridge_firewall(self.bridge)
        await ip(
            "-batch",
            "-",
            stdin=(
                f"link add {self.bridge} type bridge\n"
                f"addr add {self.subnet.gateway}/{self.subnet.prefixlen} dev {self.bridge}\n"
                f"link set {self.bridge} up\n"
            ),
        )

    async def cleanup(self) -> None:
        """Remove every namespace, veth and the bridge that carry our names, killing
        what still runs in those namespaces first (a crashed agent leaves them)."""
        for name in await self.list_netns():
            await self.delete_netns(name)
        links = await ip("-o", "link", "show", check=False)
        for line in links.splitlines():
            parts = line.split(":", 2)
            if len(parts) < 2:
                continue
            name = parts[1].strip().split("@", 1)[0]
            if name == self.bridge or (
                name.startswith(self.prefix) and name[len(self.prefix) :].isdigit()
            ):
                await ip("link", "del", name, check=False)

    async def list_netns(self) -> list[str]:
        out = await ip("netns", "list", check=False)
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        return [n for n in names if n.startswith(f"{self.prefix}-")]

    async def delete_netns(self, name: str) -> None:
        inode = procs.file_inode(f"{NETNS_DIR}/{name}")
        if inode is not None:
            survivors = await procs.kill_namespace("net", inode)
            if survivors:
                log.warning("processes %s survive in network namespace %s", survivors, name)
        await ip("netns", "del", name, check=False)

    # -- a pod ---------------------------------------------------------------------

    async def create_pod_network(self, pod_uid: str, pod_ip: str, index: int) -> str:
        """Create the pod's namespace and interfaces; return the namespace path."""
        netns = self.netns_name(pod_uid)
        veth = self.veth_name(index)
        await ip("netns", "del", netns, check=False)
        await ip("link", "del", veth, check=False)
        await ip(
            "-batch",
            "-",
            stdin=(
                f"netns add {netns}\n"
                f"link add {veth} type veth peer name eth0 address {pod_mac(pod_ip)} "
                f"netns {netns}\n"
                f"link set {veth} master {self.bridge} up\n"
            ),
        )
        inside = (
            f"addr add {pod_ip}/{self.subnet.prefixlen} dev eth0\n"
            "link set eth0 up\n"
            "link set lo up\n"
        )
        if self.service_cidr:
            inside += f"route add {self.service_cidr} via {self.subnet.proxy} dev eth0\n"
        await ip("-n", netns, "-batch", "-", stdin=inside)
        return self.netns_path(pod_uid)

    async def delete_pod_network(self, pod_uid: str, index: int) -> None:
        await self.delete_netns(self.netns_name(pod_uid))
        # Deleting the namespace destroys the veth pair with it; a leftover host end
        # (the namespace was still held) goes explicitly.
        await ip("link", "del", self.veth_name(index), check=False)
