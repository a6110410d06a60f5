"""What `local down` does so that a stopped node leaves nothing behind: pods deleted
through the API (the kubelet stops them properly), kube-proxy's iptables rules,
leftover containers in containerd, and mounts under the node's directory."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from torchyard.local.controlplane import ControlPlane
from torchyard.local.node.images import ctr


def delete_pods(cp: ControlPlane, node: str, timeout: float = 90.0) -> None:
    """Cordon the node (replacements stay Pending) and delete its pods, waiting until
    the kubelet has stopped their containers, torn down their networks and unmounted
    their volumes: it removes a pod object only after all that."""
    cp.kubectl("cordon", node, check=False)
    cp.kubectl(
        "delete", "pods", "--all-namespaces", "--field-selector", f"spec.nodeName={node}",
        "--grace-period=5", "--wait=true", f"--timeout={timeout:.0f}s",
        check=False, timeout=timeout + 30,
    )  # fmt: skip


def kube_proxy_rules(kube_proxy: Path) -> None:
    """Remove the KUBE-* chains kube-proxy installed (`kube-proxy --cleanup`)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run([str(kube_proxy), "--cleanup"], capture_output=True, timeout=60)


KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY")


def kubelet_rule_commands(table: str, rules: str) -> list[list[str]]:
    """The iptables arguments that remove the kubelet's own chains from one table, given
    `iptables -t TABLE -S`: first the jumps into them, then the chains themselves.

    The kubelet installs KUBE-FIREWALL (drops martian traffic to 127/8) and a canary
    chain, and never removes them."""
    jumps, chains = [], []
    for line in rules.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "-N" and words[1] in KUBELET_CHAINS:
            chains.append(words[1])
        elif (
            words[:1] == ["-A"]
            and words[1] not in KUBELET_CHAINS
            and any(f"-j {chain}" in line for chain in KUBELET_CHAINS)
        ):
            jumps.append(["-t", table, "-D", *words[1:]])
    return [
        *jumps,
        *(["-t", table, "-F", chain] for chain in chains),
        *(["-t", table, "-X", chain] for chain in chains),
    ]


def kubelet_rules() -> None:
    """Remove the kubelet's chains (IPv4 and IPv6) from the filter, nat and mangle tables."""
    for program in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            listing = subprocess.run([program, "-t", table, "-S"], capture_output=True, text=True)
            if listing.returncode != 0:
                continue
            for args in kubelet_rule_commands(table, listing.stdout):
                subprocess.run([program, *args], capture_output=True)


def containers(socket: Path) -> None:
    """Kill and delete every task and container still in containerd's k8s.io namespace."""

    def listing(*args: str) -> list[str]:
        result = subprocess.run(ctr(socket, *args), capture_output=True, text=True)
        return result.stdout.split() if result.returncode == 0 else []

    for task in listing("tasks", "list", "--quiet"):
        subprocess.run(ctr(socket, "tasks", "kill", "--signal=SIGKILL", task), capture_output=True)
    for task in listing("tasks", "list", "--quiet"):
        subprocess.run(ctr(socket, "tasks", "delete", "--force", task), capture_output=True)
    for container in listing("containers", "list", "--quiet"):
        subprocess.run(ctr(socket, "containers", "delete", container), capture_output=True)


def mounts_under(mountinfo: str, root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (the order to unmount them in)."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            # mountinfo escapes spaces and the like as octal (\040).
            point = fields[4].encode().decode("unicode_escape")
            if point.startswith(prefix) or point == prefix.rstrip("/"):
                points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def mounts(root: Path) -> list[str]:
    """Unmount (lazily) whatever is still mounted under `root`; return what was."""
    found = mounts_under(Path("/proc/self/mountinfo").read_text(), root)
    for point in found:
        subprocess.run(["umount", "--lazy", point], capture_output=True)
    return found
