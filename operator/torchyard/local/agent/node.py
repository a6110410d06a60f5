"""The Node object and its heartbeat: registration, status, and a Lease renewed every 10s.

`node_manifest`, `node_status` and `lease_manifest` are pure; `NodeHeart` does the I/O.
The node lifecycle controller (kube-controller-manager) watches the Lease and marks
the node NotReady if it stops being renewed; the agent marks it NotReady itself when
it stops cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from torchyard import __version__
from torchyard.local.agent.config import AgentConfig
from torchyard.local.agent.kube import Api
from torchyard.local.agent.status import rfc3339

log = logging.getLogger(__name__)
LEASE_NAMESPACE = "kube-node-lease"
RENEW_SECONDS = 10.0
STATUS_SECONDS = 60.0
KUBELET_VERSION = "v1.35.4"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


@dataclass(frozen=True)
class HostFacts:
    cpus: int
    memory_bytes: int
    storage_bytes: int
    kernel: str
    os_image: str
    boot_id: str
    machine_id: str
    architecture: str


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def host_facts(config: AgentConfig) -> HostFacts:
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    os_image = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    config.state_dir.mkdir(parents=True, exist_ok=True)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return HostFacts(
        cpus=config.cpus or os.cpu_count() or 1,
        memory_bytes=config.memory_bytes or mem_kib * 1024,
        storage_bytes=shutil.disk_usage(config.state_dir).total,
        kernel=platform.release(),
        os_image=os_image,
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        machine_id=_read("/etc/machine-id"),
        architecture=arch,
    )


def capacity(config: AgentConfig, facts: HostFacts) -> dict[str, str]:
    return {
        "cpu": str(facts.cpus),
        "memory": f"{facts.memory_bytes // 1024}Ki",
        "ephemeral-storage": f"{facts.storage_bytes // 1024}Ki",
        "pods": str(config.max_pods),
    }


def node_manifest(config: AgentConfig, facts: HostFacts) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts.architecture,
        "node.kubernetes.io/instance-type": "torchyard-local",
        **config.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.node_name,
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": config.pod_cidr, "podCIDRs": [config.pod_cidr]},
    }


def node_status(
    config: AgentConfig, facts: HostFacts, host_ip: str, ready: bool, now: float, since: float
) -> dict[str, Any]:
    """The Node's status; `since` is when readiness last changed."""
    beat, changed = rfc3339(now), rfc3339(since)

    def condition(kind: str, status: bool, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True" if status else "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": changed,
        }

    cap = capacity(config, facts)
    return {
        "capacity": cap,
        "allocatable": cap,
        "conditions": [
            condition(
                "MemoryPressure", False, "KubeletHasSufficientMemory", "agent has sufficient memory"
            ),
            condition(
                "DiskPressure", False, "KubeletHasNoDiskPressure", "agent has no disk pressure"
            ),
            condition("PIDPressure", False, "KubeletHasSufficientPID", "agent has sufficient PID"),
            condition("Ready", True, "KubeletReady", "torchyard node agent is posting ready status")
            if ready
            else condition("Ready", False, "KubeletNotReady", "torchyard node agent stopped"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": host_ip},
            {"type": "Hostname", "address": config.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.machine_id,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel,
            "osImage": facts.os_image,
            "containerRuntimeVersion": f"torchyard-agent://{__version__}",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": facts.architecture,
        },
    }


def micro_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_manifest(node: str, node_uid: str, seconds: int, now: float) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": seconds,
            "renewTime": micro_time(now),
        },
    }


class NodeHeart:
    """Registers the node, keeps its Lease fresh and its status current."""

    def __init__(self, api: Api, config: AgentConfig, facts: HostFacts, host_ip: str) -> None:
        self.api = api
        self.config = config
        self.facts = facts
        self.host_ip = host_ip
        self._since = time.time()
        self._uid = ""

    async def register(self) -> None:
        name = self.config.node_name
        manifest = node_manifest(self.config, self.facts)
        node = await self.api.create(manifest)
        if node is None:  # registered before (an earlier run of the agent)
            node = await self.api.patch(
                "Node",
                name,
                {"metadata": {"labels": manifest["metadata"]["labels"]}, "spec": manifest["spec"]},
            )
        self._uid = node["metadata"]["uid"]
        await self.post_status(ready=True)
        await self._drop_not_ready_taint()
        await self.renew()

    async def _drop_not_ready_taint(self) -> None:
        """The not-ready taint that admission puts on every new Node would keep pods
        away until the node lifecycle controller's next pass (up to 5s); the node is
        ready, so the agent removes it at once."""
        node = await self.api.get("Node", "", self.config.node_name)
        taints = ((node or {}).get("spec") or {}).get("taints") or []
        kept = [t for t in taints if t.get("key") != NOT_READY_TAINT]
        if len(kept) != len(taints):
            await self.api.patch("Node", self.config.node_name, {"spec": {"taints": kept or None}})

    async def post_status(self, ready: bool) -> None:
        now = time.time()
        body = {
            "status": node_status(self.config, self.facts, self.host_ip, ready, now, self._since)
        }
        await self.api.patch("Node", self.config.node_name, body, status=True, strategic=True)

    async def renew(self) -> None:
        lease = lease_manifest(
            self.config.node_name, self._uid, self.config.lease_seconds, time.time()
        )
        if await self.api.create(lease) is None:
            await self.api.patch(
                "Lease", self.config.node_name, {"spec": lease["spec"]}, namespace=LEASE_NAMESPACE
            )

    async def beat(self) -> None:
        """Renew the Lease every 10s and post status every minute, forever."""
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self.renew()
                if time.monotonic() - last_status >= STATUS_SECONDS:
                    await self.post_status(ready=True)
                    last_status = time.monotonic()
            except Exception as error:  # the API is briefly away: try at the next beat
                log.warning("node heartbeat failed: %s", error)

    async def stopped(self) -> None:
        self._since = time.time()
        await self.post_status(ready=False)
