"""Operator throughput at scale: N TrainingJobs through torchyard vs N PyTorchJobs through
the Kubeflow Training Operator, on the same local control plane, in the same run.

    .venv/bin/python benchmarks/scale.py [--jobs 100 500 1000] [--nodes 10]
        [--operators floor torchyard kubeflow] [--event-loop uvloop|asyncio]

Pods run nowhere: kwok (sigs.k8s.io/kwok) fakes the nodes and marks pods Running. kwok
and the Training Operator are built from the Go module proxy on first use
(benchmarks/scale.sh, about 5 minutes) and cached under ~/.cache/torchyard/scale/bin.
For each contender and N it creates N two-pod jobs (16 client threads) in a fresh
namespace, which it deletes afterwards, and prints, from watches:

- create -> both pods created (p50/p99 per job) and the wall time for all N;
- last pod Running -> the job's status says Running (p50/p99);
- API requests per job, from the API server's audit log (each operator authenticates as
  its own user; requests made during the round), and the most common kinds;
- the operator's CPU seconds during the round, its peak RSS, and the errors it logged;
- jobs that never reached Running (a lost update would show here);
- at the end, the ratios torchyard / Kubeflow, and each against the floor: the client
  creating each job's Service and pods itself, the same objects an operator creates, so
  the fastest any operator could be on this machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
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
TORCHYARD_USER = "system:serviceaccount:torchyard-system:torchyard-operator"
KUBEFLOW_USER = "kubeflow-training-operator"
# Only the two operators' requests, one record each when the response is complete;
# batched so that auditing does not slow the API server down.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {"level": "Metadata", "users": [TORCHYARD_USER, KUBEFLOW_USER]},
        {"level": "None"},
    ],
}


@dataclass
class Timeline:
    """Moments (monotonic seconds) seen for each job and its pods."""

    created: dict[str, float] = field(default_factory=dict)
    pods: dict[str, dict[str, float]] = field(default_factory=dict)
    pods_running: dict[str, dict[str, float]] = field(default_factory=dict)
    job_running: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 50) * 1000:7.0f} ms  p99 {percentile(values, 99) * 1000:7.0f} ms"
    )


def watched(client: Client, resource: Any, namespace: str, stop: threading.Event) -> Iterator[Any]:
    """Every object event until `stop` (the round's end closes the client, which breaks
    the stream): a watch refused while a new CRD's storage starts (429) or cut off is
    opened again."""
    while not stop.is_set():
        try:
            yield from (obj for _, obj in client.watch(resource, namespace=namespace))
        except Exception:
            if stop.is_set():
                return
            time.sleep(0.5)


def watch_pods(client: Client, namespace: str, job_label: str, line: Timeline) -> None:
    for pod in watched(client, Pod, namespace, line.stop):
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
    for job in watched(client, resource, namespace, line.stop):
        body = job.to_dict()
        if running(body):
            with line.lock:
                line.job_running.setdefault(body["metadata"]["name"], time.monotonic())


def torchyard_job(name: str) -> list[dict[str, Any]]:
    return [
        {
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
    ]


def kubeflow_job(name: str) -> list[dict[str, Any]]:
    template = {"spec": {"containers": [{"name": "pytorch", "image": "bench/pytorch"}]}}
    return [
        {
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
    ]


FLOOR_LABEL = "bench/job"


def floor_job(name: str) -> list[dict[str, Any]]:
    """What an operator creates for a two-pod job, created by the client itself: the
    fastest any operator could be on this machine (the API server, scheduler and kwok
    do the same work, no operator does any)."""
    labels = {FLOOR_LABEL: name}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 29500}]},
    }
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-worker-{i}", "labels": labels},
            "spec": {"containers": [{"name": "worker", "image": "bench/pytorch"}]},
        }
        for i in range(2)
    ]
    return [service, *pods]


def torchyard_running(body: dict) -> bool:
    return (body.get("status") or {}).get("phase") == "Running"


def kubeflow_running(body: dict) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Running" and c.get("status") == "True" for c in conditions)


def audited_requests(audit_log: Path, user: str) -> Counter[str]:
    """Requests of `user` in the audit log so far, by verb and resource (waits out the
    batch backend's delay)."""
    time.sleep(2.0)
    counts: Counter[str] = Counter()
    if not audit_log.exists():
        return counts
    with audit_log.open() as lines:
        for line in lines:
            if user not in line:
                continue
            record = json.loads(line)
            if record["user"]["username"] != user:
                continue
            target = record.get("objectRef") or {}
            resource = "/".join(filter(None, (target.get("resource"), target.get("subresource"))))
            counts[f"{record['verb']} {resource or record['requestURI']}"] += 1
    return counts


def logged_errors(log: Path) -> int:
    text = log.read_text(errors="replace")
    return sum(
        1
        for line in text.splitlines()
        if "ERROR" in line or "Traceback" in line or '"level":"error"' in line
    )


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
    watcher: Client,
    namespace: str,
    jobs: int,
    make: Callable[[str], list[dict[str, Any]]],
    resource: Any,
    job_label: str,
    running: Callable[[dict], bool],
    timeout: float,
) -> Timeline:
    """Create N jobs (each the objects `make` returns) and wait until every one runs:
    its job object says so or, without one (`resource` None), both its pods do."""
    line = Timeline()
    # Convert each kind of object once from here first: lightkube's models are msgspec
    # Structs, and sixteen threads converting a type for the first time at once crashed
    # the interpreter (SIGSEGV in msgspec.convert, msgspec 0.22.0).
    for manifest in make("warm-up"):
        from_dict(manifest)
    threads = [threading.Thread(target=watch_pods, args=(watcher, namespace, job_label, line))]
    if resource is not None:
        threads.append(
            threading.Thread(target=watch_jobs, args=(watcher, resource, namespace, running, line))
        )
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # let the watches start

    def create(index: int) -> None:
        name = f"job-{index:05d}"
        began = time.monotonic()
        for manifest in make(name):
            client.create(from_dict(manifest), namespace=namespace)
        with line.lock:
            line.created[name] = began

    def done() -> bool:
        with line.lock:
            if resource is None:
                for job, pods in line.pods_running.items():
                    if len(pods) >= 2:
                        line.job_running.setdefault(job, max(pods.values()))
            return len(line.job_running) >= jobs

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(jobs)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        time.sleep(0.2)
    line.stop.set()
    watcher.close()
    for thread in threads:
        thread.join(timeout=10)
    return line


@dataclass
class Usage:
    """What the operator spent on one round."""

    cpu: float
    rss: float
    requests: Counter[str]
    errors: int


@dataclass
class Figures:
    """What the ratios compare."""

    wall: float
    p99_to_pods: float
    p99_to_status: float


def report(name: str, jobs: int, line: Timeline, usage: Usage | None) -> Figures:
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
    if usage is not None:
        print(f"  last pod Running -> status     {summary(to_status)}   ({len(to_status)} jobs)")
    print(f"  jobs never Running             {jobs - len(line.job_running)}")
    if usage is not None:
        print(
            f"  operator CPU {usage.cpu:6.1f} s   peak RSS {usage.rss:6.0f} MiB   "
            f"API requests per job {usage.requests.total() / jobs:5.1f}   "
            f"errors logged {usage.errors}"
        )
        common = ", ".join(
            f"{what} {count / jobs:.1f}" for what, count in usage.requests.most_common(8)
        )
        print(f"  requests per job by kind       {common}")
    return Figures(
        last - first,
        percentile(to_pods, 99) if to_pods else float("nan"),
        percentile(to_status, 99) if to_status else float("nan"),
    )


def ratios(ours: dict[int, Figures], theirs: dict[int, Figures], floor: dict[int, Figures]) -> None:
    """torchyard / Kubeflow per N (below 1.0 torchyard is faster), and how far each is
    from the floor (the client creating the pods itself)."""
    print("ratios torchyard / Kubeflow (below 1 is faster):")
    for jobs in sorted(ours.keys() & theirs.keys()):
        a, b = ours[jobs], theirs[jobs]
        print(
            f"  N = {jobs:5d}: wall time {a.wall / b.wall:5.2f}   "
            f"p99 create -> pods {a.p99_to_pods / b.p99_to_pods:5.2f}   "
            f"p99 pod Running -> status {a.p99_to_status / b.p99_to_status:5.2f}"
        )
    for jobs in sorted(floor):
        base = floor[jobs]
        contenders = (("torchyard", ours.get(jobs)), ("Kubeflow", theirs.get(jobs)))
        times = "   ".join(f"{n} {f.wall / base.wall:5.2f}x" for n, f in contenders if f)
        print(
            f"  N = {jobs:5d}: floor (no operator) all pods in {base.wall:6.1f} s, "
            f"p99 {base.p99_to_pods:5.2f} s;   wall time vs floor: {times}"
        )


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


def start_kubeflow(cp: ControlPlane, workdir: Path, kubeconfig: Path) -> subprocess.Popen[bytes]:
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
        f"--kubeconfig={kubeconfig}",
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


@dataclass
class Contender:
    """One operator under test: how to make its jobs and see them run."""

    name: str
    pid: int
    log: Path
    user: str
    make: Callable[[str], list[dict[str, Any]]]
    resource: Any
    job_label: str
    running: Callable[[dict], bool]


def measure(
    client: Client,
    watcher: Client,
    contender: Contender,
    namespace: str,
    jobs: int,
    audit_log: Path,
    timeout: float,
    title: str | None = None,
) -> Figures:
    cpu_before, _ = process_stats(contender.pid)
    requests_before = audited_requests(audit_log, contender.user)
    errors_before = logged_errors(contender.log)
    line = run_round(
        client,
        watcher,
        namespace,
        jobs,
        contender.make,
        contender.resource,
        contender.job_label,
        contender.running,
        timeout,
    )
    cpu, rss = process_stats(contender.pid)
    usage = Usage(
        cpu=cpu - cpu_before,
        rss=rss,
        requests=audited_requests(audit_log, contender.user) - requests_before,
        errors=logged_errors(contender.log) - errors_before,
    )
    return report(title or contender.name, jobs, line, usage)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--operators",
        nargs="+",
        choices=("floor", "torchyard", "kubeflow"),
        default=["floor", "torchyard", "kubeflow"],
        help="which to run: floor is the client creating the pods itself (no operator)",
    )
    parser.add_argument(
        "--event-loop", choices=("uvloop", "asyncio"), default="uvloop", help="torchyard's"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come
    ours: dict[int, Figures] = {}
    theirs: dict[int, Figures] = {}
    floor: dict[int, Figures] = {}
    for binary in ("kwok", "training-operator.v1"):
        if not (BIN / binary).exists():
            subprocess.run(["bash", str(Path(__file__).with_name("scale.sh"))], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="torchyard-scale-"))
    audit_log = workdir / "audit.log"
    (workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
    audit = (
        f"--audit-policy-file={workdir / 'audit-policy.yaml'}",
        f"--audit-log-path={audit_log}",
        "--audit-log-mode=batch",
        "--audit-log-format=json",
    )
    try:
        with ControlPlane(controllers=True, apiserver_args=audit) as cp:
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
                bench = Bench(cp, client, workdir, args.jobs, audit_log, args.timeout)
                if "floor" in args.operators:
                    floor = run_floor(bench)
                if "torchyard" in args.operators:
                    ours = run_torchyard(bench, [f"--event-loop={args.event_loop}"])
                if "kubeflow" in args.operators:
                    theirs = run_kubeflow(bench)
                ratios(ours, theirs, floor)
            finally:
                kwok.terminate()
                kwok.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(WEBHOOK_CERTS.parent, ignore_errors=True)
    return 0


@dataclass
class Bench:
    """What every round shares."""

    cp: ControlPlane
    client: Client
    workdir: Path
    counts: list[int]
    audit_log: Path
    timeout: float


def clear(cp: ControlPlane, namespace: str) -> None:
    """Delete a round's namespace and wait, so that the next round starts from nothing."""
    cp.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=900s", timeout=960)


WARM_UP_JOBS = 5


def run_rounds(
    bench: Bench, contender: Contender | None, prefix: str, prepare: Callable[[str], None]
) -> dict[int, Figures]:
    """One round per N, each in its own namespace; None runs the floor. An operator first
    gets a small warm-up round, so that its start-up is not counted in the first N."""
    figures = {}
    rounds = [(f"{n}", n) for n in bench.counts]
    if contender is not None:
        rounds.insert(0, ("warm-up", WARM_UP_JOBS))
    for label, jobs in rounds:
        namespace = f"{prefix}-{label}"
        prepare(namespace)
        watcher = Client(KubeConfig.from_file(bench.cp.kubeconfig))  # closed by the round
        if contender is None:
            line = run_round(
                bench.client,
                watcher,
                namespace,
                jobs,
                floor_job,
                None,
                FLOOR_LABEL,
                bool,
                bench.timeout,
            )
            result = report("floor: the client creates the pods itself", jobs, line, None)
        else:
            title = f"{contender.name} (warm-up, not counted)" if label == "warm-up" else None
            result = measure(
                bench.client,
                watcher,
                contender,
                namespace,
                jobs,
                bench.audit_log,
                bench.timeout,
                title,
            )
        if label != "warm-up":
            figures[jobs] = result
        clear(bench.cp, namespace)
    return figures


def run_floor(bench: Bench) -> dict[int, Figures]:
    return run_rounds(bench, None, "floor", lambda ns: bench.cp.kubectl("create", "namespace", ns))


def run_torchyard(bench: Bench, operator_args: list[str]) -> dict[int, Figures]:
    torchyard = Contender(
        "torchyard",
        start_operator(bench.cp, bench.workdir, operator_args),
        bench.workdir / "operator.log",
        TORCHYARD_USER,
        torchyard_job,
        TrainingJob,
        "torchyard.io/trainingjob",
        torchyard_running,
    )
    try:
        return run_rounds(bench, torchyard, "torchyard", lambda ns: claim(bench.cp, ns))
    finally:
        stop_operator(bench.workdir)


def run_kubeflow(bench: Bench) -> dict[int, Figures]:
    kubeconfig = bench.cp.user_kubeconfig(KUBEFLOW_USER, groups=["system:masters"])
    process = start_kubeflow(bench.cp, bench.workdir, kubeconfig)
    kubeflow = Contender(
        f"Kubeflow Training Operator {KUBEFLOW}",
        process.pid,
        bench.workdir / "kubeflow.log",
        KUBEFLOW_USER,
        kubeflow_job,
        PyTorchJob,
        "training.kubeflow.org/job-name",
        kubeflow_running,
    )
    try:
        return run_rounds(
            bench, kubeflow, "kubeflow", lambda ns: bench.cp.kubectl("create", "namespace", ns)
        )
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    raise SystemExit(main())
