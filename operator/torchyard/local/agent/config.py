"""The node agent's settings, with the defaults of the local cluster."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from torchyard.images import WORKER_IMAGE
from torchyard.local.agent.provisioner import PROVISIONER, STORAGE_CLASS
from torchyard.local.pki import SERVICE_CLUSTER_IP_RANGE

DEFAULT_NODE = "torchyard-local"
DEFAULT_STATE_DIR = Path("/var/lib/torchyard-agent")


@dataclass
class AgentConfig:
    """Everything the agent needs to know; the CLI flags of `python -m
    torchyard.local.agent` map one to one onto these fields."""

    # The node's identity (CN=system:node:<name>, O=system:nodes): pods, Node, Lease.
    kubeconfig: Path
    # An identity for what the Node authorizer refuses a node: Services and
    # EndpointSlices cluster-wide (hosts files, the service proxy), and provisioning
    # PersistentVolumes for claims (see launcher.agent_rbac()).
    infra_kubeconfig: Path
    node_name: str = DEFAULT_NODE
    state_dir: Path = DEFAULT_STATE_DIR
    images: tuple[str, ...] = (WORKER_IMAGE,)
    pod_cidr: str = "10.244.0.0/24"
    bridge: str = "tyagent0"
    # Prefix of network namespaces (<prefix>-<pod uid>) and host veths (<prefix><n>).
    prefix: str = "tya"
    service_cidr: str = SERVICE_CLUSTER_IP_RANGE
    # The kubelet's defaults: restarts back off 10s, 20s... up to 5 minutes.
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    # How long pods get to stop when the agent itself stops.
    shutdown_grace: float = 10.0
    lease_seconds: int = 40
    # Node capacity; None reads the host.
    cpus: int | None = None
    memory_bytes: int | None = None
    max_pods: int = 110
    storage_class: str = STORAGE_CLASS
    labels: dict[str, str] = field(default_factory=dict)
    # Run privileged, hostPath, hostNetwork/hostPID/hostIPC and uid-0 pods, which reach
    # the node itself; refused (PrivilegesNotAllowed) unless set.
    allow_privileged_pods: bool = False

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    @property
    def pvc_dir(self) -> Path:
        return self.state_dir / "pvc"

    @property
    def provisioner(self) -> str:
        return PROVISIONER


def is_root() -> bool:
    return os.geteuid() == 0
