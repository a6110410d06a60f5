"""Pod start latency: the container node against the node agent, and node startup.

    .venv/bin/python benchmarks/pod_start.py [--pods 10]                  (as root)
    .venv/bin/python benchmarks/pod_start.py --agent-detail [--pods 20]

By default, in one run: a control plane with the node agent, then a control plane with
the container node (kubelet, containerd, runc, kube-proxy, CoreDNS), each timed from
start to Ready, then created -> Running for the same shell command one pod at a time on
each, and the command as a plain subprocess (the baseline). The container node's bridge
is fixed (tynode0): no `local up --node=containers` may run at the same time.

With --agent-detail: the node agent alone (own bridge and subnet), measuring:

- created -> Running (as a watch sees it) and created -> the container's first output
  line, one pod at a time, then for a burst of pods created together;
- the same command as a plain subprocess of this script, no cluster: start -> first
  output line (the baseline: what Python itself costs);
- the agent's resident memory and CPU: idle, with the pods running, per pod.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lightkube import AsyncClient, KubeConfig
from lightkube.codecs import from_dict
from lightkube.resources.core_v1 import Pod

from torchyard.images import WORKER_IMAGE
from torchyard.local.agent import launcher
from torchyard.local.controlplane import ControlPlane
from torchyard.local.node import busybox
from torchyard.local.node import images as node_images
from torchyard.local.node import network as node_network
from torchyard.local.node import node as container_node
from torchyard.local.node.layout import Network

NAMESPACE = "default"
SCRIPT = "import time; print('up', flush=True); time.sleep(3600)"


SHELL = ["sh", "-c", "echo up; exec sleep 3600"]


def shell_pod(name: str, image: str) -> dict[str, Any]:
    """The same tiny command on either node: sh exists in both images."""
    manifest = pod_manifest(name)
    container = manifest["spec"]["containers"][0]
    container.update(image=image, command=SHELL, imagePullPolicy="Never")
    return manifest


def pod_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {"name": "main", "image": WORKER_IMAGE, "command": ["python", "-c", SCRIPT]}
            ],
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values) * 1000:6.0f} ms   "
        f"p99 {percentile(values, 99) * 1000:6.0f} ms   (n={len(values)})"
    )


def proc_usage(pid: int) -> tuple[float, float]:
    """(resident MiB, CPU seconds) of one process."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return rss_kib / 1024, cpu


async def first_line(log_glob: str, state: Path, deadline: float) -> float:
    while time.monotonic() < deadline:
        for path in state.glob(log_glob):
            if path.stat().st_size > 0:
                return time.monotonic()
        await asyncio.sleep(0.005)
    raise TimeoutError(log_glob)


class Watcher:
    """Records when each pod was first seen Running."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.running: dict[str, float] = {}
        self.events: dict[str, asyncio.Event] = {}

    async def run(self) -> None:
        async for _, pod in self.client.watch(Pod, namespace=NAMESPACE):
            if pod.status and pod.status.phase == "Running":
                name = pod.metadata.name
                if name not in self.running:
                    self.running[name] = time.monotonic()
                    self.events.setdefault(name, asyncio.Event()).set()

    async def wait(self, name: str, timeout: float = 60.0) -> float:
        event = self.events.setdefault(name, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)
        return self.running[name]


async def measure(cp: ControlPlane, state: Path, agent_pid: int, pods: int) -> None:
    client = AsyncClient(config=KubeConfig.from_file(str(cp.kubeconfig)))
    watcher = Watcher(client)
    watch = asyncio.ensure_future(watcher.run())
    await asyncio.sleep(0.5)
    idle_rss, idle_cpu = proc_usage(agent_pid)

    # Warm-up (first pod pays for cold caches on the node).
    await client.create(from_dict(pod_manifest("warmup")))
    await watcher.wait("warmup")
    await client.delete(Pod, "warmup", namespace=NAMESPACE)

    running, first_output = [], []
    cpu_before = proc_usage(agent_pid)[1]
    for i in range(pods):
        name = f"seq-{i}"
        began = time.monotonic()
        await client.create(from_dict(pod_manifest(name)))
        running.append(await watcher.wait(name) - began)
        deadline = time.monotonic() + 30
        glob = f"pods/{NAMESPACE}_{name}_*/containers/main/0.log"
        first_output.append(await first_line(glob, state, deadline) - began)
    start_cpu = (proc_usage(agent_pid)[1] - cpu_before) / pods

    burst_began = time.monotonic()
    names = [f"burst-{i}" for i in range(pods)]
    await asyncio.gather(*(client.create(from_dict(pod_manifest(n))) for n in names))
    burst = [await watcher.wait(n, 120) - burst_began for n in names]
    all_running = max(burst)

    await asyncio.sleep(2)  # let the status updates settle
    rss, cpu0 = proc_usage(agent_pid)
    await asyncio.sleep(10)
    cpu_idle_pods = (proc_usage(agent_pid)[1] - cpu0) / 10
    running_pods = 2 * pods
    watch.cancel()
    await client.close()

    baseline = []
    for _ in range(pods):
        began = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        baseline.append(time.monotonic() - began)
        proc.kill()
        proc.wait()

    print(f"pod start latency, {pods} pods one at a time:")
    print(f"  created -> Running (watch)        {summary(running)}")
    print(f"  created -> first output line      {summary(first_output)}")
    print(f"baseline, the same command as a plain subprocess, {pods} runs:")
    print(f"  start -> first output line        {summary(baseline)}")
    print(f"burst of {pods} pods created together:")
    print(f"  created -> Running (watch)        {summary(burst)}")
    print(f"  all {pods} running after {all_running:.2f}s")
    print(f"node agent (pid {agent_pid}) overhead:")
    print(f"  resident memory: {idle_rss:.1f} MiB idle, {rss:.1f} MiB with {running_pods} pods")
    print(f"    -> {(rss - idle_rss) / running_pods * 1024:.0f} KiB per running pod")
    print(f"  CPU: {start_cpu * 1000:.0f} ms of agent CPU per pod start")
    print(
        f"    {cpu_idle_pods * 100:.2f}% of one core with {running_pods} pods running "
        f"-> {cpu_idle_pods * 100 / running_pods:.3f}% per running pod "
        f"(agent CPU before any pod: {idle_cpu:.1f}s since start)"
    )


async def start_latency(cp: ControlPlane, image: str, pods: int) -> list[float]:
    """created -> Running (as a watch sees it), one pod at a time, after one warm-up pod."""
    client = AsyncClient(config=KubeConfig.from_file(str(cp.kubeconfig)))
    watcher = Watcher(client)
    watch = asyncio.ensure_future(watcher.run())
    await asyncio.sleep(0.5)
    await client.create(from_dict(shell_pod("warmup", image)))
    await watcher.wait("warmup", 120)
    latencies = []
    for i in range(pods):
        began = time.monotonic()
        await client.create(from_dict(shell_pod(f"seq-{i}", image)))
        latencies.append(await watcher.wait(f"seq-{i}") - began)
    watch.cancel()
    await client.close()
    return latencies


def agent_run(pods: int) -> tuple[float, list[float]]:
    with ControlPlane(controllers=True) as cp:
        state = Path(tempfile.mkdtemp(prefix="torchyard-bench-agent-"))
        began = time.monotonic()
        agent = launcher.start(
            cp, state, node="torchyard-bench", extra=launcher.isolated_network_flags("tb")
        )
        startup = time.monotonic() - began
        try:
            return startup, asyncio.run(start_latency(cp, WORKER_IMAGE, pods))
        finally:
            launcher.stop(agent)
            shutil.rmtree(state, ignore_errors=True)


def container_run(pods: int) -> tuple[dict[str, float], list[float]]:
    net = Network()
    if node_network.exists(net):
        raise SystemExit("bridge tynode0 exists: `torchyard local down` the container node first")
    state = Path(tempfile.mkdtemp(prefix="tyb-", dir="/tmp"))  # short: a socket lives there
    archive = busybox.archive()
    timings: dict[str, float] = {}
    began = time.monotonic()
    container_node.prepare_network(print, net)
    cp = ControlPlane(state, address=net.node_ip).start()
    timings["control plane"] = time.monotonic() - began
    try:
        node = container_node.ContainerNode(cp, state, net).start(print)
        timings.update(node.timings)
        node_images.load(node.layout.containerd_socket, archive)
        return timings, asyncio.run(start_latency(cp, busybox.IMAGE, pods))
    finally:
        container_node.stop_detached(state, cp, net)
        cp.stop()
        shutil.rmtree(state, ignore_errors=True)


def baseline_run(pods: int) -> list[float]:
    times = []
    for _ in range(pods):
        began = time.monotonic()
        proc = subprocess.Popen(SHELL, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        proc.stdout.readline()
        times.append(time.monotonic() - began)
        proc.kill()
        proc.wait()
    return times


def compare(pods: int) -> None:
    agent_startup, agent = agent_run(pods)
    node_timings, containers = container_run(pods)
    baseline = baseline_run(pods)
    print(f"pod start latency, `{' '.join(SHELL)}`, {pods} pods one at a time:")
    print(f"  node agent (processes):   created -> Running  {summary(agent)}")
    print(f"  container node (kubelet): created -> Running  {summary(containers)}")
    print(f"  plain subprocess:         start -> first line {summary(baseline)}")
    print("node startup (start -> Ready):")
    print(f"  node agent:      {agent_startup:.1f}s")
    print(
        f"  container node:  {node_timings['kube-proxy and CoreDNS']:.1f}s in all; cumulative: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in node_timings.items() if k != "coredns build")
    )
    print(f"  (its control plane on the node address: {node_timings['control plane']:.1f}s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument(
        "--agent-detail",
        action="store_true",
        help="the node agent's own figures: bursts, memory and CPU per pod",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("both nodes need root", file=sys.stderr)
        return 2
    if not args.agent_detail:
        compare(args.pods)
        return 0
    state = Path(tempfile.mkdtemp(prefix="torchyard-bench-agent-"))
    with ControlPlane(controllers=True) as cp:
        flags = launcher.isolated_network_flags("tb")
        agent = launcher.start(cp, state, node="torchyard-bench", extra=flags)
        try:
            asyncio.run(measure(cp, state, agent.pid, args.pods))
        finally:
            launcher.stop(agent)
            shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
