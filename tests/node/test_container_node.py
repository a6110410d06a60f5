"""The container node, checked as a user would: real containers with cgroup limits and
seccomp, a pod network, Services by name, the API server from a pod, `kubectl logs`,
OOM kills, and a `local down` that leaves nothing behind. Tests run in file order; the
last one stops the node."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.node.conftest import NodeCluster, netns_names, veth_names
from torchyard.local.node import busybox
from torchyard.local.node.layout import POD_CIDR

pytestmark = pytest.mark.node

RESTRICTED_NS = "node-restricted"
MEMORY_LIMIT = 64 * 1024 * 1024


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }


def pod(
    name: str,
    script: str,
    memory: str = "64Mi",
    restart: str = "Never",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A busybox pod that passes the restricted Pod Security level."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": RESTRICTED_NS, "labels": labels or {}},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": busybox.IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "resources": {"limits": {"memory": memory, "cpu": "250m"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            **spec,
        },
    }


def service(name: str, selector: dict[str, str], headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": selector,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": RESTRICTED_NS},
        "spec": spec,
    }


@pytest.fixture(scope="module", autouse=True)
def restricted_namespace(node: NodeCluster) -> str:
    node.apply(namespace(RESTRICTED_NS))
    return RESTRICTED_NS


def running(p: dict[str, Any]) -> bool:
    return p.get("status", {}).get("phase") == "Running"


def finished(p: dict[str, Any]) -> bool:
    return p.get("status", {}).get("phase") in ("Succeeded", "Failed")


def test_a_restricted_pod_runs_in_a_real_container(node: NodeCluster) -> None:
    script = (
        "id -u; grep Seccomp: /proc/self/status; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; "
        "ls /; echo done; sleep 3600"
    )
    node.apply(pod("probe", script))
    started = node.wait_pod("probe", RESTRICTED_NS, "probe Running", running)
    assert ipaddress.ip_address(started["status"]["podIP"]) in ipaddress.ip_network(POD_CIDR)

    # Read through the API server, which asks the kubelet: `kubectl logs` works.
    lines = node.logs("probe", RESTRICTED_NS).split()
    assert lines[0] == "65532"
    assert lines[1:3] == ["Seccomp:", "2"]
    assert int(lines[3]) == MEMORY_LIMIT
    # Its own root file system, from the image: the machine's /usr is not there.
    assert "bin" in lines and "usr" not in lines
    # `kubectl exec` streams through the API server and the kubelet too.
    exec_id = node.cp.kubectl("exec", "probe", "-n", RESTRICTED_NS, "--", "id", "-u")
    assert exec_id.stdout.strip() == "65532"


def test_services_resolve_by_name_and_route_between_pods(node: NodeCluster) -> None:
    serve = "echo hello-from-web > /tmp/index.html; httpd -f -p 8080 -h /tmp"
    node.apply(
        pod("web", serve, labels={"app": "web"}),
        service("web", {"app": "web"}),
        # As a TrainingJob's rank 0: <hostname>.<subdomain> under a headless Service.
        pod("rank0", serve, labels={"app": "ranks"}, hostname="rank0", subdomain="ranks"),
        service("ranks", {"app": "ranks"}, headless=True),
    )
    node.wait_pod("web", RESTRICTED_NS, "web Running", running)
    node.wait_pod("rank0", RESTRICTED_NS, "rank0 Running", running)
    # busybox's wget crashes (static glibc); nc resolves names and speaks HTTP well enough.
    get = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3"
    client = (
        f"for i in $(seq 60); do {get} web 80 > /tmp/a && {get} rank0.ranks 8080 > /tmp/b "
        "&& grep -q hello /tmp/a && grep -q hello /tmp/b && break; sleep 1; done; "
        "echo web=$(grep hello /tmp/a) rank0=$(grep hello /tmp/b)"
    )
    node.apply(pod("client", client))
    done = node.wait_pod("client", RESTRICTED_NS, "client to finish", finished)
    assert done["status"]["phase"] == "Succeeded"
    assert node.logs("client", RESTRICTED_NS).split() == [
        "web=hello-from-web",
        "rank0=hello-from-web",
    ]


def test_a_pod_reaches_the_api_server_through_the_kubernetes_service(
    node: NodeCluster,
) -> None:
    # Plain HTTP to the API server's TLS port: Go's TLS server answers it in clear text,
    # which shows that the name, the Service's DNAT and the API server's listener on the
    # node address all work (busybox has no TLS client that does not crash).
    script = (
        "for i in $(seq 30); do printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | "
        "nc -w 3 kubernetes.default.svc 443 | grep -q 'HTTPS server' && echo reached && break; "
        "sleep 1; done"
    )
    node.apply(pod("api", script))
    done = node.wait_pod("api", RESTRICTED_NS, "api client to finish", finished)
    assert done["status"]["phase"] == "Succeeded"
    assert node.logs("api", RESTRICTED_NS).split() == ["reached"]


def test_a_pod_over_its_memory_limit_is_oom_killed(node: NodeCluster) -> None:
    # dd fills a 200 MiB buffer; the pod runs a moment first, as real workloads do.
    hog = "sleep 2; dd if=/dev/zero of=/dev/null bs=200M count=1"
    node.apply(pod("hog", hog, memory="32Mi"))
    done = node.wait_pod("hog", RESTRICTED_NS, "hog to be killed", finished)
    (status,) = done["status"]["containerStatuses"]
    terminated = status["state"].get("terminated") or {}
    assert (terminated.get("reason"), terminated.get("exitCode")) == ("OOMKilled", 137), status


def test_down_stops_everything_and_leaves_nothing_behind(node: NodeCluster) -> None:
    root = node.workdir / "node"
    down = node.torchyard("down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout

    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.state) not in mounts
    leftovers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(node.state) in text:
            leftovers.append(text)
    assert leftovers == []
    assert netns_names() <= node.netns_before
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "tynode0" not in links
    assert veth_names() <= node.veths_before
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert "KUBE-SERVICES" not in nat and "10.245.0." not in nat
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    assert "KUBE-FIREWALL" not in rules  # the kubelet's own chain
    assert not (node.workdir / "node.json").exists()
    assert root.is_dir()  # images and logs stay for the next `up`
