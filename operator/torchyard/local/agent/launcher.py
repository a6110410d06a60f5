"""Start the node agent next to a local control plane, and stop it.

The launcher acts as the cluster admin once: it grants the agent's infrastructure
identity its RBAC, installs the default StorageClass, and writes the two kubeconfigs
(node and infrastructure). The agent itself never holds admin credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from torchyard.local import processes
from torchyard.local.agent.config import DEFAULT_NODE
from torchyard.local.agent.provisioner import PROVISIONER, STORAGE_CLASS
from torchyard.local.controlplane import ControlPlane, ControlPlaneError
from torchyard.local.processes import Child

INFRA_USER = "torchyard:local-agent"
AGENT_STATE = "agent.json"


def cluster_objects(node: str = DEFAULT_NODE) -> list[dict[str, Any]]:
    """RBAC for the agent's infrastructure identity, and the default StorageClass."""
    name = "torchyard:local-agent"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                # hosts files and the service proxy (a node may read Services but not
                # EndpointSlices)
                {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                # the local-path provisioner
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumeclaims"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumes"],
                    "verbs": ["get", "list", "watch", "create", "delete"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": INFRA_USER}
            ],
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    ]


def isolated_network_flags(tag: str = "t") -> tuple[str, ...]:
    """Agent flags for a bridge, name prefix and pod subnet that no other agent on this
    machine uses: test sessions and benchmarks that run side by side (or next to a
    `local up` cluster) must not clean up each other's namespaces."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    for _ in range(100):
        prefix = f"{tag}{secrets.token_hex(2)}"
        third = secrets.randbelow(150) + 100
        if f": {prefix}" in links or f" 10.244.{third}." in addresses:
            continue
        return (f"--bridge={prefix}br", f"--prefix={prefix}", f"--pod-cidr=10.244.{third}.0/24")
    raise RuntimeError("no free agent network found")


def agent_argv(
    node_kubeconfig: Path,
    infra_kubeconfig: Path,
    state_dir: Path,
    node: str = DEFAULT_NODE,
    extra: Sequence[str] = (),
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torchyard.local.agent",
        f"--kubeconfig={node_kubeconfig}",
        f"--infra-kubeconfig={infra_kubeconfig}",
        f"--node-name={node}",
        f"--state-dir={state_dir}",
        *extra,
    ]


def prepare(cp: ControlPlane, node: str = DEFAULT_NODE) -> tuple[Path, Path]:
    """Grant RBAC, install the StorageClass; return (node, infra) kubeconfigs."""
    objects = cluster_objects(node)
    cp.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-",
        input=yaml.safe_dump_all(objects),
    )  # fmt: skip
    node_config = cp.user_kubeconfig(f"system:node:{node}", ["system:nodes"])
    infra_config = cp.user_kubeconfig(INFRA_USER)
    return node_config, infra_config


def start(
    cp: ControlPlane,
    state_dir: Path,
    node: str = DEFAULT_NODE,
    extra: Sequence[str] = (),
    log: Path | None = None,
    timeout: float = 60.0,
) -> Child:
    """Start the agent (its own session, so it outlives a detached `up`) and wait
    until its node is Ready and schedulable."""
    node_config, infra_config = prepare(cp, node)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = log or state_dir / "agent.log"
    argv = agent_argv(node_config, infra_config, state_dir, node, extra)
    child = processes.spawn("torchyard-agent", argv, log)
    try:
        wait_ready(cp, child, node, timeout)
    except BaseException:
        stop(child)
        raise
    return child


def node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = (node.get("spec") or {}).get("taints") or []
    return ready and not any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints)


def wait_ready(cp: ControlPlane, child: Child, node: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if child.returncode() is not None:
            raise ControlPlaneError(
                f"the node agent exited with status {child.returncode()}. Last lines of "
                f"{child.log}:\n{processes.log_tail(child.log)}"
            )
        result = cp.kubectl("get", "node", node, "-o", "json", check=False)
        if result.returncode == 0 and node_ready(json.loads(result.stdout)):
            return
        if time.monotonic() > deadline:
            raise ControlPlaneError(
                f"node {node} not ready after {timeout:.0f}s. Last lines of {child.log}:\n"
                f"{processes.log_tail(child.log)}"
            )
        time.sleep(0.2)


def stop(child: Child, grace: float = 30.0) -> None:
    """SIGTERM, then wait: the agent stops its pods and cleans up before it exits."""
    processes.stop([child], grace)


# -- detached (torchyard local up / down) ---------------------------------------------


def write_state(workdir: Path, child: Child) -> None:
    state = {"pid": child.pid, "exe": child.exe, "log": str(child.log)}
    (workdir / AGENT_STATE).write_text(json.dumps(state))


def stop_detached(workdir: Path, grace: float = 30.0) -> bool:
    """Stop the agent recorded in `workdir`; False if none was running."""
    path = workdir / AGENT_STATE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return False
    child = Child("torchyard-agent", int(state["pid"]), state["exe"], Path(state["log"]))
    if child.is_ours():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while child.is_ours() and time.monotonic() < deadline:
            time.sleep(0.1)
        if child.is_ours():
            processes.stop([child], 0)
    path.unlink(missing_ok=True)
    return True
