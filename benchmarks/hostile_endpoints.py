"""The operator's memory and CPU against hostile progress endpoints, and against normal
ones in the same run (the baseline).

    .venv/bin/python benchmarks/hostile_endpoints.py [--jobs 4] [--seconds 30]
        [--behaviours normal huge-body ...] [--operator-source DIR]

Starts its own control plane (no node: pods are given a Running status and a podIP
through the API, as a kubelet would). For each behaviour, a fresh operator process
under its own RBAC, `--jobs` running TrainingJobs whose replica 0 answers on its own
loopback address with that behaviour (tests/hostile.py: 1 GiB bodies, endless and slow
bodies, endless headers, 100,000-deep JSON, redirects to itself, ...), plus one job
that answers normally. Once every job runs, it samples the operator for `--seconds`
and prints, per behaviour:

- polls served: requests the hostile endpoints got (the poller reads each job every 5 s);
- the operator's RSS once it is up (before any job), its peak over its life (VmHWM:
  a fresh process, so the peak is this behaviour's) and at the end;
- its CPU seconds from then to the end of the window;
- whether the normal job was polled during the window and its progress advanced in
  status (the poller survived);
- tracebacks in its log, and what its liveness endpoint answered at the end.

`--operator-source DIR` runs the operator from another checkout's `operator/` folder
(e.g. `git archive <commit> operator | tar -x -C DIR`), for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.hostile: the hostile servers the tests use too

from tests.hostile import BEHAVIOURS, HostileServer  # noqa: E402

from torchyard.local.controlplane import ControlPlane  # noqa: E402
from torchyard.local.stack import install, start_operator, stop_operator  # noqa: E402
from torchyard.resources.training import PROGRESS_PORT  # noqa: E402

SAMPLE = REPO / "manifests" / "samples" / "digits-train.yaml"
DEFAULT_BEHAVIOURS = [
    "normal",
    "huge-body",
    "endless-chunked",
    "slow-body",
    "slow-headers",
    "endless-headers",
    "deep-json",
    "deep-json-small",
    "redirect-self",
    "gzip-bomb",
    "garbage",
    "bad-values",
]
MIB = 1024 * 1024


@dataclass
class Figures:
    behaviour: str
    polls: int
    rss_idle: int
    rss_peak: int
    rss_end: int
    cpu_seconds: float
    normal_advanced: bool
    tracebacks: int
    liveness: str


def _loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _liveness(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return f"{response.status} {response.read().decode()[:80]}"
    except urllib.error.HTTPError as error:
        return f"{error.code}"
    except OSError as error:
        return f"no answer ({error})"


def _job(name: str) -> dict[str, Any]:
    job = yaml.safe_load(SAMPLE.read_text())
    job["metadata"] = {"name": name}
    job["spec"].pop("registerAs", None)
    return job


def _status(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", "tjob", name, "-n", namespace, "-o", "json").stdout
    return json.loads(out).get("status") or {}


def _run_pods(cp: ControlPlane, namespace: str, job: str, ip: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        out = cp.kubectl(
            "get", "pods", "-n", namespace, "-l", f"torchyard.io/trainingjob={job}", "-o", "json"
        ).stdout
        pods = json.loads(out)["items"]
        if len(pods) == 2:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no pods for {job}")
        time.sleep(0.2)
    for pod in pods:
        name = pod["metadata"]["name"]
        address = ip if name.endswith("-worker-0") else "127.0.0.1"
        status = {"status": {"phase": "Running", "podIP": address, "podIPs": [{"ip": address}]}}
        cp.kubectl(
            "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(status),
        )  # fmt: skip


def measure(cp: ControlPlane, behaviour: str, jobs: int, seconds: float) -> Figures:
    namespace = f"hostile-{behaviour}-{random.randint(0, 99999)}"
    cp.kubectl("create", "namespace", namespace)
    deadline = time.monotonic() + 30
    while cp.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError("no default ServiceAccount")
        time.sleep(0.2)
    workdir = Path(tempfile.mkdtemp(prefix="torchyard-hostile-"))
    liveness = f"http://127.0.0.1:{random.randint(20000, 29000)}/healthz"
    with ExitStack() as stack:
        servers = [
            stack.enter_context(HostileServer(behaviour, _loopback(), PROGRESS_PORT))
            for _ in range(jobs)
        ]
        normal = stack.enter_context(HostileServer("normal", _loopback(), PROGRESS_PORT))
        pid = start_operator(cp, workdir, [f"--liveness={liveness}"])
        try:
            deadline = time.monotonic() + 60
            while not _liveness(liveness)[:1].isdigit():
                if time.monotonic() > deadline:
                    raise TimeoutError("the operator did not start")
                time.sleep(0.2)
            rss_idle, cpu_idle = _memory(pid, "VmRSS"), _cpu_seconds(pid)
            names = {f"h{i}": s.address[0] for i, s in enumerate(servers)}
            names["control"] = normal.address[0]
            for name in names:
                cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_job(name)))
            for name, ip in names.items():
                _run_pods(cp, namespace, name, ip)
            deadline = time.monotonic() + 120
            while not all(
                _status(cp, namespace, n).get("phase") == "Running" for n in names
            ):  # fmt: skip
                if time.monotonic() > deadline:
                    raise TimeoutError("jobs not Running")
                time.sleep(0.5)
            time.sleep(5.0)  # a round of polls, whose writes land before the window
            step_before = (_status(cp, namespace, "control").get("progress") or {}).get("step", 0)
            polled_before = normal.hits
            time.sleep(seconds)
            step_after = (_status(cp, namespace, "control").get("progress") or {}).get("step", 0)
            advanced = normal.hits > polled_before and step_after > step_before
            text = (workdir / "operator.log").read_text()
            return Figures(
                behaviour=behaviour,
                polls=sum(s.hits for s in servers),
                rss_idle=rss_idle,
                rss_peak=_memory(pid, "VmHWM"),
                rss_end=_memory(pid, "VmRSS"),
                cpu_seconds=_cpu_seconds(pid) - cpu_idle,
                normal_advanced=advanced,
                tracebacks=text.count("Traceback"),
                liveness=_liveness(liveness),
            )
        finally:
            stop_operator(workdir)
            cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="hostile jobs per behaviour")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument(
        "--behaviours", nargs="+", default=DEFAULT_BEHAVIOURS, choices=sorted(BEHAVIOURS)
    )
    parser.add_argument("--operator-source", help="run the operator from DIR/operator")
    args = parser.parse_args()
    if args.operator_source:
        source = Path(args.operator_source).resolve() / "operator"
        paths = [str(source), os.environ.get("PYTHONPATH", "")]
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    results = []
    with ControlPlane(controllers=True) as cp:
        install(cp, REPO / "manifests" / "overlays" / "local")
        for behaviour in args.behaviours:
            figures = measure(cp, behaviour, args.jobs, args.seconds)
            results.append(figures)
            print(
                f"{behaviour}: {figures.polls} polls, RSS {figures.rss_idle / MIB:.0f} -> "
                f"peak {figures.rss_peak / MIB:.0f} MiB, CPU {figures.cpu_seconds:.1f} s",
                flush=True,
            )
    print()
    print(
        f"{args.jobs} hostile jobs + 1 normal job per behaviour, {args.seconds:g} s window, "
        "a fresh operator each"
        + (f" (operator from {args.operator_source})" if args.operator_source else "")
    )
    print(
        "| behaviour | polls served | RSS idle | RSS peak | RSS end | CPU s "
        "| normal job's progress advanced | tracebacks | liveness |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in results:
        print(
            f"| {f.behaviour} | {f.polls} | {f.rss_idle / MIB:.0f} MiB "
            f"| {f.rss_peak / MIB:.0f} MiB | {f.rss_end / MIB:.0f} MiB | {f.cpu_seconds:.1f} | "
            f"{'yes' if f.normal_advanced else 'NO'} | {f.tracebacks} | {f.liveness.split()[0]} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
