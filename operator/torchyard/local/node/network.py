"""The node's bridge: made before anything starts, so that its address (the node
address) exists for the API server, the kubelet and CoreDNS to listen on. The CNI bridge
plugin finds it there and attaches pods to it."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from torchyard.local.node.errors import NodeError
from torchyard.local.node.layout import Network

_SYSCTLS = {
    # Pods reach the world and Services through the node.
    "net/ipv4/ip_forward": "1",
    # kube-proxy's DNAT must see traffic between pods on the same bridge.
    "net/bridge/bridge-nf-call-iptables": "1",
}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NodeError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def exists(network: Network) -> bool:
    return _ip("link", "show", network.bridge, check=False).returncode == 0


def setup(network: Network) -> None:
    """Create the bridge with the node address (if absent) and set the sysctls."""
    if not Path("/proc/sys/net/bridge").exists():
        subprocess.run(["modprobe", "br_netfilter"], capture_output=True)
    for key, value in _SYSCTLS.items():
        path = Path("/proc/sys") / key
        try:
            if path.read_text().strip() != value:
                path.write_text(value)
        except OSError as error:
            raise NodeError(
                f"cannot set {key.replace('/', '.')}={value} ({error}); the container "
                "node needs it (load the br_netfilter module: `modprobe br_netfilter`)"
            ) from error
    if not exists(network):
        _ip("link", "add", network.bridge, "type", "bridge")
    address = f"{network.node_ip}/{network.prefixlen}"
    if address not in _ip("-o", "addr", "show", "dev", network.bridge).stdout:
        _ip("addr", "add", address, "dev", network.bridge)
    _ip("link", "set", network.bridge, "up")


def teardown(network: Network) -> None:
    with contextlib.suppress(NodeError):
        if exists(network):
            _ip("link", "delete", network.bridge)
