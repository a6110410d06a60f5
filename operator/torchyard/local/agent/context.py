"""What the agent shares with every pod worker (kept apart to avoid import cycles)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchyard.local.agent import hosts
from torchyard.local.agent.config import AgentConfig
from torchyard.local.agent.events import Recorder
from torchyard.local.agent.kube import Api
from torchyard.local.agent.mounts import MountPoints
from torchyard.local.agent.network import Allocator, Network
from torchyard.local.agent.policy import BackOff


class ClusterView:
    """What the pod needs to know about the cluster's Services (see cluster.py)."""

    def services(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def hosts_entries(self, namespace: str) -> list[hosts.Entry]:
        return []


@dataclass
class NodeContext:
    """What every pod worker shares with the agent."""

    config: AgentConfig
    api: Api
    network: Network
    allocator: Allocator
    mount_points: MountPoints
    cluster: ClusterView
    events: Recorder
    host_ip: str
    capacity: dict[str, str]
    backoff: BackOff
    python_paths: list[str]
    bin_dir: str
