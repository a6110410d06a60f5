"""The container node, started as a user starts it: `torchyard local up --node=containers`
in a state directory of its own, with a busybox test image loaded into its containerd.

Needs root (containerd, runc, a bridge, iptables), like the e2e tier. The node's bridge
(tynode0), subnet and kubelet port are fixed, so it cannot run next to another
container-node cluster on the same machine; the fixture says so instead of colliding.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from torchyard.local.controlplane import ControlPlane
from torchyard.local.node import busybox, network
from torchyard.local.node.layout import Network


@dataclass
class NodeCluster:
    cp: ControlPlane
    env: dict[str, str]
    state: Path
    netns_before: set[str]
    veths_before: set[str]

    @property
    def workdir(self) -> Path:
        return self.state / "torchyard" / "local"

    def torchyard(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "torchyard.cli", "local", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def apply(self, *objects: dict[str, Any]) -> None:
        self.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def pod(self, name: str, namespace: str) -> dict[str, Any]:
        result = self.cp.kubectl("get", "pod", name, "-n", namespace, "-o", "json")
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def wait_pod(
        self,
        name: str,
        namespace: str,
        what: str,
        check: Callable[[dict[str, Any]], bool],
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            pod = self.pod(name, namespace)
            if check(pod):
                return pod
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}: {json.dumps(pod.get('status'), indent=1)}"
                )
            time.sleep(0.3)

    def logs(self, name: str, namespace: str) -> str:
        return self.cp.kubectl("logs", name, "-n", namespace).stdout


def veth_names() -> set[str]:
    """Host ends of veth pairs (the CNI bridge plugin names them veth<hash>)."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    return {name for name in names if name.startswith("veth")}


def netns_names() -> set[str]:
    """The CNI's network namespaces (cni-<uuid>); the node agents of test sessions
    running beside this one name theirs after their own prefixes."""
    directory = Path("/run/netns")
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.name.startswith("cni-")}


@pytest.fixture(scope="module")
def node() -> Iterator[NodeCluster]:
    if network.exists(Network()):
        raise AssertionError(
            "bridge tynode0 exists: a container-node cluster is running on this machine "
            "(`torchyard local down` it first); this test starts its own"
        )
    # Short, because containerd's socket path must fit a sockaddr_un.
    state = Path(tempfile.mkdtemp(prefix="tyn-", dir="/tmp"))
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    cluster = NodeCluster(
        cp=None, env=env, state=state, netns_before=netns_names(), veths_before=veth_names()
    )  # type: ignore[arg-type]
    up = cluster.torchyard("up", "--node=containers", "--no-operator")
    try:
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        cp = ControlPlane.attach(cluster.workdir)
        assert cp is not None
        cluster.cp = cp
        loaded = cluster.torchyard("load-image", str(busybox.archive()))
        assert loaded.returncode == 0, loaded.stderr
        assert busybox.IMAGE in loaded.stdout
        yield cluster
    finally:
        cluster.torchyard("down")
        shutil.rmtree(state, ignore_errors=True)
