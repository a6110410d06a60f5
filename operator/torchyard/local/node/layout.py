"""Where the container node keeps its files, and the addresses it uses.

Everything lives under the local cluster's state directory (nothing under /etc or
/var/lib), so that `local down` and a fresh `up` know exactly what is theirs; only
containerd's image store is kept in the cache (~/.cache/torchyard/containerd), so
that images loaded once outlive the cluster.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from torchyard.local.build import cache_root

NODE_NAME = "torchyard-node"
BRIDGE = "tynode0"
POD_CIDR = "10.245.0.0/24"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "localhost/pause:3.10"
CNI_BIN_DIR = Path("/usr/lib/cni")
# The namespace the CRI plugin keeps Kubernetes' images and containers in.
CONTAINERD_NAMESPACE = "k8s.io"


@dataclass(frozen=True)
class Network:
    """The pod network: one bridge whose first address is the node's own address.

    The node address is what pods route to: the API server (behind the `kubernetes`
    Service), the kubelet (logs, exec) and CoreDNS listen on it.
    """

    bridge: str = BRIDGE
    pod_cidr: str = POD_CIDR

    @property
    def node_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.pod_cidr).prefixlen


@dataclass(frozen=True)
class Layout:
    """The node's directories and files under `root` (<state dir>/node)."""

    root: Path
    image_store: Path | None = None
    """containerd's root (images, snapshots) when kept apart from the node's state: the
    worker image is gigabytes, and imported once it serves every later cluster."""

    @property
    def containerd_root(self) -> Path:
        return self.image_store or self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        """host-local's address leases (default /var/lib/cni/networks)."""
        return self.root / "cni" / "networks"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def corefile(self) -> Path:
        return self.root / "Corefile"

    @property
    def claims(self) -> Path:
        """The provisioner's directories, one per PersistentVolumeClaim."""
        return self.root / "claims"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def kubeconfig(self, component: str) -> Path:
        return self.root / f"{component}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.root / f"{component}.log"


def layout_for(workdir: Path) -> Layout:
    """The container node's layout under a local cluster's state directory."""
    return Layout(workdir / "node", image_store=cache_root().parent / "containerd")
