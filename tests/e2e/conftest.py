"""Fixtures for end-to-end tests: the local control plane plus the node agent, so that
pods really run (as local processes) and Jobs, Services, probes and volumes work.

The agent needs root (network namespaces, veths, mounts), as CI and the dev container
provide. Each session's agent gets a bridge, subnet and name prefix of its own, so that
sessions running side by side, or a `torchyard local up` cluster, do not collide.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Session,
    install,
    running_operator,
)
from torchyard.images import WORKER_IMAGE
from torchyard.local.agent import launcher
from torchyard.local.agent.volumes import unmount_under
from torchyard.local.controlplane import ControlPlane
from torchyard.local.processes import Child

NODE = "torchyard-e2e"


@dataclass
class Cluster:
    """A control plane with one node agent; helpers to drive pods through kubectl."""

    cp: ControlPlane
    agent: Child
    state_dir: Path
    node: str
    pod_cidr: str

    def apply(self, *objects: dict[str, Any]) -> None:
        self.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        result = self.cp.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def pod(self, name: str, namespace: str) -> dict[str, Any]:
        pod = self.get("pod", name, namespace)
        assert pod is not None, f"pod {namespace}/{name} does not exist"
        return pod

    def wait_pod(
        self,
        name: str,
        namespace: str,
        check: Callable[[dict[str, Any]], Any],
        timeout: float = 60.0,
        what: str = "",
    ) -> dict[str, Any]:
        """Poll the pod until check(pod) is truthy; fail with the pod's status if not."""
        deadline = time.monotonic() + timeout
        pod: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            pod = self.get("pod", name, namespace)
            if pod is not None and check(pod):
                return pod
            time.sleep(0.2)
        status = json.dumps((pod or {}).get("status"), indent=1)
        raise AssertionError(f"pod {namespace}/{name}: timed out waiting for {what}:\n{status}")

    def wait_phase(
        self, name: str, namespace: str, *phases: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        return self.wait_pod(
            name, namespace, lambda p: phase(p) in phases, timeout, f"phase in {phases}"
        )

    def wait_gone(self, kind: str, name: str, namespace: str, timeout: float = 60.0) -> float:
        began = time.monotonic()
        while self.get(kind, name, namespace) is not None:
            if time.monotonic() - began > timeout:
                raise AssertionError(f"{kind} {namespace}/{name} still exists after {timeout}s")
            time.sleep(0.1)
        return time.monotonic() - began


def phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def container_status(pod: dict[str, Any], name: str = "main") -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == name:
            return status  # type: ignore[no-any-return]
    return {}


def condition(pod: dict[str, Any], kind: str) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return str(cond["status"])
    return None


def python_pod(
    name: str,
    namespace: str,
    script: str,
    *,
    restart_policy: str = "Never",
    **container: Any,
) -> dict[str, Any]:
    """A restricted pod whose one container runs `python -c script` from the worker image."""
    spec_extra = container.pop("pod_spec", {})
    labels = container.pop("labels", {})
    main = {
        "name": "main",
        "image": WORKER_IMAGE,
        "command": ["python", "-c", script],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **container,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532},
            "containers": [main],
            **spec_extra,
        },
    }


def remove_state(state: Path) -> None:
    """The agent's state dir (pod logs, claim directories), once the agent has stopped."""
    unmount_under(state)
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and one node agent."""
    with ControlPlane(controllers=True) as cp:
        state = Path(tempfile.mkdtemp(prefix="torchyard-e2e-agent-"))
        flags = launcher.isolated_network_flags("te")
        agent = launcher.start(cp, state, node=NODE, extra=flags)
        try:
            cidr = next(f for f in flags if f.startswith("--pod-cidr=")).split("=", 1)[1]
            yield Cluster(cp, agent, state, NODE, cidr)
        finally:
            launcher.stop(agent)
            remove_state(state)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """torchyard installed (manifests/base) and its operator running as its ServiceAccount,
    under exactly the RBAC the manifests grant; yields the operator's log file."""
    install(cluster.cp)
    kubeconfig = cluster.cp.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster.cp, kubeconfig, log):
        yield log


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (restricted Pod Security) named after the test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{secrets.token_hex(3)}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    deadline = time.monotonic() + 30
    while cluster.cp.kubectl(
        "get", "serviceaccount", "default", "-n", name, check=False
    ).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no default ServiceAccount in namespace {name} after 30s")
        time.sleep(0.1)
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def session(cluster: Cluster, namespace: str) -> Session:
    """The test's namespace, as tests.cluster.torchyard.Session drives it."""
    return Session(cluster.cp, namespace)
