"""Operator throughput at scale: N TrainingJobs through torchyard vs N PyTorchJobs through
the Kubeflow Training Operator, on the same local control plane, in the same run.

    .venv/bin/python benchmarks/scale.py [--jobs 100 500] [--nodes 10]

Pods run nowhere: kwok (sigs.k8s.io/kwok) fakes the nodes and marks pods Running. Both
operators' binaries are built from the Go module proxy on first use (benchmarks/scale.sh,
about 5 minutes) and cached under ~/.cache/torchyard/scale/bin. For each operator and N
it creates N two-pod jobs (16 client threads) and prints, from watches:

- create -> both pods created (p50/p99 per job) and the wall time for all N;
- last pod Running -> the job's status says Running (p50/p99);
- the operator's CPU seconds and peak RSS; for torchyard, API requests per job (from its
  request log).

First version (issue 8): measures, does not tune yet.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, KubeConfig
from lightkube.codecs import from_dict
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Pod

from torchyard.local.controlplane import ControlPlane
from torchyard.local.stack import REPO_ROOT, install, start_operator, stop_operator

BIN = Path.home() / ".cache/torchyard/scale/bin"
KUBEFLOW = "v1.8.1"
TrainingJob = create_namespaced_resource("torchyard.io", "v1alpha1", "TrainingJob", "trainingjobs")
PyTorchJob = create_namespaced_resource("kubeflow.org", "v1", "PyTorchJob", "pytorchjobs")
# Where the Training Operator's webhook server reads its certificates (fixed in its code).
WEBHOOK_CERTS = Path("/tmp/k8s-webhook-server/serving-certs")


@dataclass
class Timeline:
    """Moments (monotonic seconds) seen for each job and its pods."""

    created: dict[str, float] = field(default_factory=dict)
    pods: dict[str, dict[str, float]] = field(default_factory=dict)
    pods_running: dict[str, dict[str, float]] = field(default_factory=dict)
    job_running: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 50) * 1000:7.0f} ms  p99 {percentile(values, 99) * 1000:7.0f} ms"
    )


def watched(client: Client, resource: Any, namespace: str) -> Iterator[Any]:
    """Every object event, forever: a watch refused while a new CRD's storage starts (429)
    or cut off is opened again."""
    while True:
        try:
            yield from (obj for _, obj in client.watch(resource, namespace=namespace))
        except Exception:
            time.sleep(0.5)


def watch_pods(client: Client, namespace: str, job_label: str, line: Timeline) -> None:
    for pod in watched(client, Pod, namespace):
        job = (pod.metadata.labels or {}).get(job_label)
        if job is None:
            continue
        now = time.monotonic()
        with line.lock:
            line.pods.setdefault(job, {}).setdefault(pod.metadata.name, now)
            if pod.status and pod.status.phase == "Running":
                line.pods_running.setdefault(job, {}).setdefault(pod.metadata.name, now)


def watch_jobs(
    client: Client, resource: Any, namespace: str, running: Callable[[dict], bool], line: Timeline
) -> None:
    for job in watched(client, resource, namespace):
        body = job.to_dict()
        if running(body):
            with line.lock:
                line.job_running.setdefault(body["metadata"]["name"], time.monotonic())


def torchyard_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "parallelism": {"mode": "data", "replicas": 2},
            "model": {
                "uri": "file:///models/mlp.pt",
                "format": "state_dict",
                "factory": "torchyard.workloads.models:mlp",
            },
            "dataset": {"uri": "builtin://digits"},
            "checkpoint": {"uri": f"pvc://bench/{name}/ckpt"},
            "output": {"uri": f"pvc://bench/{name}/model"},
        },
    }


def kubeflow_job(name: str) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "pytorch", "image": "bench/pytorch"}]}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": template},
                "Worker": {"replicas": 1, "template": template},
            }
        },
    }


def torchyard_running(body: dict) -> bool:
    return (body.get("status") or {}).get("phase") == "Running"


def kubeflow_running(body: dict) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Running" and c.get("status") == "True" for c in conditions)


def process_stats(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS in MiB of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0.0
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            peak = int(row.split()[1]) / 1024
    return cpu, peak


def run_round(
    client: Client,
    namespace: str,
    jobs: int,
    make: Callable[[str], dict[str, Any]],
    resource: Any,
    job_label: str,
    running: Callable[[dict], bool],
    timeout: float,
) -> Timeline:
    line = Timeline()
    for target, args in (
        (watch_pods, (client, namespace, job_label, line)),
        (watch_jobs, (client, resource, namespace, running, line)),
    ):
        threading.Thread(target=target, args=args, daemon=True).start()
    time.sleep(1.0)  # let the watches start

    def create(index: int) -> None:
        name = f"job-{index:05d}"
        began = time.monotonic()
        client.create(from_dict(make(name)), namespace=namespace)
        with line.lock:
            line.created[name] = began

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(jobs)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with line.lock:
            if len(line.job_running) >= jobs:
                break
        time.sleep(0.2)
    return line


def report(name: str, jobs: int, line: Timeline, cpu: float, rss: float, extra: str) -> None:
    to_pods = [
        max(line.pods[job].values()) - began
        for job, began in line.created.items()
        if len(line.pods.get(job, {})) >= 2
    ]
    to_status = [
        line.job_running[job] - max(line.pods_running[job].values())
        for job in line.created
        if job in line.job_running and len(line.pods_running.get(job, {})) >= 2
    ]
    first = min(line.created.values())
    last = max((max(p.values()) for p in line.pods.values()), default=first)
    print(f"{name}, N = {jobs}:")
    print(f"  jobs with both pods            {len(to_pods)}/{jobs}")
    print(f"  create -> both pods created    {summary(to_pods)}   all in {last - first:6.1f} s")
    print(f"  last pod Running -> status     {summary(to_status)}   ({len(to_status)} jobs)")
    print(f"  operator CPU {cpu:6.1f} s   peak RSS {rss:6.0f} MiB{extra}")


def fake_nodes(cp: ControlPlane, count: int) -> None:
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-node-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"kubernetes.io/hostname": f"kwok-node-{i}", "type": "kwok"},
            },
            "status": {
                "allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "10000"},
                "capacity": {"cpu": "1000", "memory": "4Ti", "pods": "10000"},
            },
        }
        for i in range(count)
    ]
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(nodes))


def claim(cp: ControlPlane, namespace: str) -> None:
    """A pre-bound volume, so that pods with the claim schedule (no provisioner here)."""
    cp.kubectl("create", "namespace", namespace)
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-bench"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "hostPath": {"path": "/tmp/bench"},
            "claimRef": {"namespace": namespace, "name": "bench"},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "bench", "namespace": namespace},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": f"{namespace}-bench",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([volume, pvc]))


def start_kubeflow(cp: ControlPlane, workdir: Path) -> subprocess.Popen[bytes]:
    """The Training Operator as a host process: its CRD, a webhook configuration that
    matches nothing (its cert controller insists on one) and the serving certs on disk
    where its webhook server looks, as a mounted Secret would put them."""
    source = (
        Path(
            subprocess.run(
                ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        / f"github.com/kubeflow/training-operator@{KUBEFLOW}"
    )
    cp.kubectl(
        "apply",
        "--server-side",
        "-f",
        str(source / "manifests/base/crds/kubeflow.org_pytorchjobs.yaml"),
    )
    cp.kubectl("create", "namespace", "kubeflow")
    cp.kubectl("create", "secret", "generic", "training-operator-webhook-cert", "-n", "kubeflow")
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "validator.training-operator.kubeflow.org"},
        "webhooks": [
            {
                "name": "validator.pytorchjob.training-operator.kubeflow.org",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "clientConfig": {"service": {"name": "training-operator", "namespace": "kubeflow"}},
                "rules": [
                    {
                        "apiGroups": ["kubeflow.org"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["nothing-matches-this"],
                    }
                ],
            }
        ],
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(webhook))
    command = [
        str(BIN / "training-operator.v1"),
        f"--kubeconfig={cp.kubeconfig}",
        "--enable-scheme=pytorchjob",
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
    ]
    env = {**os.environ, "POD_NAMESPACE": "kubeflow"}
    log = (workdir / "kubeflow.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    # The cert controller fills the Secret; copy it where the webhook server reads.
    certs = WEBHOOK_CERTS
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = cp.kubectl(
            "get", "secret", "training-operator-webhook-cert", "-n", "kubeflow", "-o", "yaml"
        ).stdout
        data = yaml.safe_load(out).get("data") or {}
        if "tls.crt" in data:
            certs.mkdir(parents=True, exist_ok=True)
            for key in ("tls.crt", "tls.key", "ca.crt"):
                (certs / key).write_bytes(base64.b64decode(data[key]))
            break
        time.sleep(0.5)
    # Its readiness was decided before the files existed: start it again, as a pod would.
    process.terminate()
    process.wait()
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    for binary in ("kwok", "training-operator.v1"):
        if not (BIN / binary).exists():
            subprocess.run(["bash", str(Path(__file__).with_name("scale.sh"))], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="torchyard-scale-"))
    try:
        with ControlPlane(controllers=True) as cp:
            kwok = subprocess.Popen(
                [
                    str(BIN / "kwok"),
                    f"--kubeconfig={cp.kubeconfig}",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                ],
                stdout=(workdir / "kwok.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            try:
                fake_nodes(cp, args.nodes)
                client = Client(KubeConfig.from_file(cp.kubeconfig))
                install(cp, REPO_ROOT / "manifests" / "overlays" / "local")
                pid = start_operator(cp, workdir)
                try:
                    for jobs in args.jobs:
                        namespace = f"torchyard-{jobs}"
                        claim(cp, namespace)
                        before = (workdir / "operator.log").read_text().count("HTTP Request")
                        line = run_round(
                            client,
                            namespace,
                            jobs,
                            torchyard_job,
                            TrainingJob,
                            "torchyard.io/trainingjob",
                            torchyard_running,
                            args.timeout,
                        )
                        cpu, rss = process_stats(pid)
                        calls = (workdir / "operator.log").read_text().count("HTTP Request")
                        per_job = f"   API requests per job {(calls - before) / jobs:5.1f}"
                        report("torchyard", jobs, line, cpu, rss, per_job)
                finally:
                    stop_operator(workdir)
                kubeflow = start_kubeflow(cp, workdir)
                try:
                    for jobs in args.jobs:
                        namespace = f"kubeflow-{jobs}"
                        cp.kubectl("create", "namespace", namespace)
                        line = run_round(
                            client,
                            namespace,
                            jobs,
                            kubeflow_job,
                            PyTorchJob,
                            "training.kubeflow.org/job-name",
                            kubeflow_running,
                            args.timeout,
                        )
                        cpu, rss = process_stats(kubeflow.pid)
                        report(f"Kubeflow Training Operator {KUBEFLOW}", jobs, line, cpu, rss, "")
                finally:
                    kubeflow.terminate()
                    kubeflow.wait()
            finally:
                kwok.terminate()
                kwok.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(WEBHOOK_CERTS.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
