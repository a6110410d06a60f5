"""ModelVersion at scale: what the ModelVersion controller costs once every version has
settled, and how late a timed rollout pause moves on, for two operator builds in one run.

    .venv/bin/python benchmarks/modelversion_scale.py [--models 10] [--versions 20]
        [--window 90] [--baseline-src /work/mv-baseline] [--current-src .]
        [--only baseline|current] [--pause-models N] [--pauses 3] [--pause-seconds 5]

The baseline is an operator source tree of today's controller, e.g.
`git worktree add /work/mv-baseline ae7bfce`; the current one is this working tree.
Each runs as the torchyard-operator ServiceAccount with PYTHONPATH=<tree>/operator, on
a fresh local control plane of its own (CRDs and RBAC from its own tree), one after the
other, with the same workload. Pods run nowhere: kwok (benchmarks/scale.sh builds it)
fakes the nodes and marks the serving pods Running and Ready. The operator's requests
come from the API server's audit log (its user only), its CPU from /proc (every process
of its session).

For each operator:

1. setup: MODELS models x VERSIONS versions, created round by round (version k of
   every model at once, each with spec.promote after the first, and the next round once
   every model's version k is Serving): wall time, the operator's writes (create, update,
   patch, delete) and lists, and its CPU seconds, from the first create until settled:
   each model's newest version Serving with a ready pod, every older one Superseded or
   RolledBack with none;
2. steady state: after --settle seconds more, a --window of doing nothing: writes and
   lists per minute (writes by kind: they should be near zero when nothing changes),
   CPU seconds per minute, peak RSS, and whether anything left the settled state;
3. pause -> next step: a newer version of --pause-models models whose rollout starts
   with --pauses timed pauses (`pause: {durationSeconds: S}`), then `setWeight: 20`.
   A pause ends at status.stepStartTime + S (whole seconds, as the controller keeps it);
   the delay is from then until a watch shows status.currentStep past it: p50/p99/max
   over every pause of every model. The pauses come before any setWeight because under
   kwok no analysis can pass (nothing answers on the pods' IPs): a step at a weight
   above 0 waits for a passing analysis forever, so the last step is never passed.

At the end, a table of both operators and the ratio current / baseline (below 1 the
current build costs less or is faster). Run it at two sizes (e.g. --models 5
--versions 10, then the defaults) to see whether the steady-state cost grows with the
number of versions: a controller that only works when something changes stays flat.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, KubeConfig
from lightkube.codecs import from_dict
from lightkube.generic_resource import create_namespaced_resource

from scale import BIN, TORCHYARD_USER, fake_nodes, logged_errors, percentile, watched
from torchyard.local.controlplane import ControlPlane
from torchyard.local.stack import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, REPO_ROOT, install

ModelVersion = create_namespaced_resource(
    "torchyard.io", "v1alpha1", "ModelVersion", "modelversions"
)
NAMESPACE = "bench"
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
SETTLED_OLD = ("Superseded", "RolledBack")
# Status fields the pause measurement reads (ModelVersionStatus): the index of the step
# in progress and when it began (a timed pause counts from it, in whole seconds).
CURRENT_STEP = "currentStep"
STEP_START = "stepStartTime"
KWOK = "v0.7.0"
"""As benchmarks/scale.sh pins it."""
AUDIT_FLUSH = 3.0
"""Seconds to wait before reading the audit log: the batch backend flushes every second."""
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [{"level": "Metadata", "users": [TORCHYARD_USER]}, {"level": "None"}],
}


@dataclass(frozen=True)
class Request:
    """One audited request of the operator."""

    at: float
    """When the API server received it (epoch seconds)."""
    verb: str
    what: str
    """resource[/subresource], or the URI of a non-resource request."""


class Audit:
    """The operator's requests in the audit log, read as the log grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.requests: list[Request] = []

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as log:
            if os.fstat(log.fileno()).st_size < self.offset:
                raise RuntimeError(f"{self.path} was rotated: its requests are not all counted")
            log.seek(self.offset)
            data = log.read()
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next read
        self.offset += end
        for line in data[:end].splitlines():
            record = json.loads(line)
            if record["user"]["username"] != TORCHYARD_USER:
                continue
            target = record.get("objectRef") or {}
            what = "/".join(filter(None, (target.get("resource"), target.get("subresource"))))
            at = datetime.fromisoformat(record["requestReceivedTimestamp"]).timestamp()
            self.requests.append(Request(at, record["verb"], what or record["requestURI"]))

    def between(self, start: float, end: float) -> list[Request]:
        """Requests received in [start, end) (epoch seconds), once the log has them."""
        time.sleep(max(0.0, end + AUDIT_FLUSH - time.time()))
        self.read()
        return [r for r in self.requests if start <= r.at < end]


@dataclass(frozen=True)
class Usage:
    """What the operator spent over one interval."""

    seconds: float
    cpu: float
    requests: list[Request]

    def count(self, verbs: Iterable[str]) -> int:
        wanted = set(verbs)
        return sum(1 for r in self.requests if r.verb in wanted)

    def per_minute(self, value: float) -> float:
        return value * 60 / self.seconds if self.seconds > 0 else float("nan")

    def kinds(self, verbs: Iterable[str], rate: bool = True, top: int = 6) -> str:
        """The commonest requests with these verbs: per minute, or in all."""
        wanted = set(verbs)
        counts = Counter(f"{r.verb} {r.what}" for r in self.requests if r.verb in wanted)
        return ", ".join(
            f"{what} {self.per_minute(count) if rate else count:.0f}"
            for what, count in counts.most_common(top)
        )


@dataclass
class Tracker:
    """Every ModelVersion in the namespace as a watch last saw it, and for each the moment
    each rollout step first showed in its status and when that step began (the latest
    stepStartTime while it was current)."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: dict[str, dict[int, tuple[float, str | None]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def follow(self, client: Client) -> None:
        for obj in watched(client, ModelVersion, NAMESPACE, self.stop):
            body = obj.to_dict()
            seen = time.time()
            name = body["metadata"]["name"]
            status = body.get("status") or {}
            with self.lock:
                self.bodies[name] = body
                step = status.get(CURRENT_STEP)
                if step is None:
                    continue
                steps = self.steps.setdefault(name, {})
                first, start = steps.get(int(step), (seen, None))
                steps[int(step)] = (first, status.get(STEP_START) or start)

    def phase(self, name: str) -> str | None:
        with self.lock:
            return ((self.bodies.get(name) or {}).get("status") or {}).get("phase")

    def unsettled(self, models: list[str], newest: int) -> list[str]:
        """Versions not yet as a settled model has them (newest Serving with a ready pod
        and Ready, older ones retired with no ready pod)."""
        with self.lock:
            bodies = dict(self.bodies)
        wrong = []
        for model in models:
            for number in range(1, newest + 1):
                name = version_name(model, number)
                status = (bodies.get(name) or {}).get("status") or {}
                ready = status.get("readyReplicas") or 0
                if number == newest:
                    conditions = status.get("conditions") or []
                    ok = (
                        status.get("phase") == "Serving"
                        and ready >= 1
                        and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
                    )
                else:
                    ok = status.get("phase") in SETTLED_OLD and ready == 0
                if not ok:
                    wrong.append(f"{name} {status.get('phase')} ({ready} ready)")
        return wrong


def version_name(model: str, number: int) -> str:
    return f"{model}-v{number}"


def model_version(model: str, number: int, **spec: Any) -> dict[str, Any]:
    """A ModelVersion whose artifact exists nowhere: under kwok no pod ever reads it."""
    digest = hashlib.sha256(f"{model}/{number}".encode()).hexdigest()
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": version_name(model, number), "namespace": NAMESPACE},
        "spec": {
            "model": model,
            "version": str(number),
            "artifact": {
                "uri": f"file:///models/{model}/{number}.pt",
                "digest": f"sha256:{digest}",
            },
            **spec,
        },
    }


def wait_for(check: Callable[[], list[str]], timeout: float, what: str) -> float:
    """Seconds until check() returns nothing (what is still wrong); raise on timeout."""
    began = time.monotonic()
    while True:
        wrong = check()
        if not wrong:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
            raise TimeoutError(f"{what}: not after {timeout:.0f} s: {shown}")
        time.sleep(0.25)


def session_cpu(leader: int) -> float:
    """CPU seconds (user + system, reaped children included) of every process in the
    session `leader` started."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == leader:
            total += sum(int(f) for f in fields[11:15])
    return total / ticks


def peak_rss(pid: int) -> float:
    """Peak resident memory of a live process, MiB."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def start_operator(cp: ControlPlane, source: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """`torchyard operator` from `source` (its operator/ first on PYTHONPATH), as the
    operator's ServiceAccount, in a session of its own."""
    kubeconfig = cp.service_account_kubeconfig(
        OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, duration_seconds=24 * 3600
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(source / "operator")}
    imported = subprocess.run(
        [sys.executable, "-c", "import torchyard; print(torchyard.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(imported).resolve().is_relative_to((source / "operator").resolve()):
        raise RuntimeError(f"torchyard comes from {imported}, not from {source}")
    with (workdir / "operator.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "torchyard.cli", "operator", "--liveness="],
            env=env,
            cwd=source,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_session(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@dataclass
class Settings:
    models: int
    versions: int
    window: float
    settle: float
    pause_models: int
    pauses: int
    pause_seconds: int
    nodes: int
    round_timeout: float


@dataclass
class Result:
    """One operator's figures."""

    name: str
    source: Path
    setup_seconds: float = float("nan")
    setup: Usage | None = None
    steady: Usage | None = None
    rss: float = float("nan")
    left_settled: list[str] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    pauses_expected: int = 0
    errors: int = 0
    failure: str | None = None


class Run:
    """One operator on its own control plane: setup, steady window, pauses."""

    def __init__(self, cp: ControlPlane, workdir: Path, settings: Settings) -> None:
        self.cp = cp
        self.workdir = workdir
        self.settings = settings
        self.client = Client(KubeConfig.from_file(cp.kubeconfig))
        self.audit = Audit(workdir / "audit.log")
        self.models = [f"model-{i:02d}" for i in range(settings.models)]
        self.tracker = Tracker()

    def create(self, manifests: list[dict[str, Any]]) -> None:
        for manifest in manifests:
            self.client.create(from_dict(manifest), namespace=NAMESPACE)

    def usage(self, pid: int, start: float, cpu_before: float) -> Usage:
        end = time.time()
        cpu = session_cpu(pid) - cpu_before
        return Usage(end - start, cpu, self.audit.between(start, end))

    def setup(self, pid: int, result: Result) -> None:
        s = self.settings
        start, cpu = time.time(), session_cpu(pid)
        for number in range(1, s.versions + 1):
            spec = {"promote": True} if number > 1 else {}
            self.create([model_version(m, number, **spec) for m in self.models])
            names = [version_name(m, number) for m in self.models]
            wait_for(
                lambda names=names: [n for n in names if self.tracker.phase(n) != "Serving"],
                s.round_timeout,
                f"round {number}: every model's version {number} Serving",
            )
        wait_for(
            lambda: self.tracker.unsettled(self.models, s.versions),
            s.round_timeout,
            "settled",
        )
        result.setup = self.usage(pid, start, cpu)
        result.setup_seconds = result.setup.seconds

    def steady(self, pid: int, result: Result) -> None:
        s = self.settings
        time.sleep(s.settle)
        start, cpu = time.time(), session_cpu(pid)
        deadline = time.monotonic() + s.window
        left: set[str] = set()
        while time.monotonic() < deadline:
            left.update(self.tracker.unsettled(self.models, s.versions))
            time.sleep(1.0)
        result.steady = self.usage(pid, start, cpu)
        result.rss = peak_rss(pid)
        result.left_settled = sorted(left)

    def pauses(self, result: Result) -> None:
        s = self.settings
        steps: list[dict[str, Any]] = [{"pause": {"durationSeconds": s.pause_seconds}}] * s.pauses
        steps += [{"setWeight": 20}, {"pause": {"durationSeconds": s.pause_seconds}}]
        number = s.versions + 1
        names = [version_name(m, number) for m in self.models[: s.pause_models]]
        self.create(
            [
                model_version(m, number, rollout={"steps": steps})
                for m in self.models[: s.pause_models]
            ]
        )

        def behind() -> list[str]:
            with self.tracker.lock:
                return [n for n in names if max(self.tracker.steps.get(n, {0: None})) < s.pauses]

        try:
            wait_for(behind, s.pauses * (s.pause_seconds + 30) + 30, "pauses passed")
        except TimeoutError as error:
            print(f"  {error}")
        result.pauses_expected = len(names) * s.pauses
        with self.tracker.lock:
            seen = {n: dict(self.tracker.steps.get(n, {})) for n in names}
        for steps_seen in seen.values():
            for index in range(s.pauses):
                later = [first for step, (first, _) in steps_seen.items() if step > index]
                began = steps_seen.get(index, (0.0, None))[1]
                if not later or began is None:
                    continue
                due = datetime.fromisoformat(began).timestamp() + s.pause_seconds
                result.delays.append(min(later) - due)

    def measure(self, result: Result) -> None:
        watcher = Client(KubeConfig.from_file(self.cp.kubeconfig))
        thread = threading.Thread(target=self.tracker.follow, args=(watcher,), daemon=True)
        thread.start()
        operator = start_operator(self.cp, result.source, self.workdir)
        try:
            self.setup(operator.pid, result)
            print(f"  settled after {result.setup_seconds:.0f} s of setup; steady window next")
            self.steady(operator.pid, result)
            print("  steady window done; pauses")
            self.pauses(result)
        finally:
            result.errors = logged_errors(self.workdir / "operator.log")
            stop_session(operator)
            self.tracker.stop.set()
            watcher.close()
            thread.join(timeout=10)


def run_one(name: str, source: Path, settings: Settings, keep: Path | None) -> Result:
    """Everything for one operator, on a fresh control plane."""
    result = Result(name, source)
    workdir = Path(tempfile.mkdtemp(prefix=f"torchyard-mvscale-{name}-"))
    (workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
    audit = (
        f"--audit-policy-file={workdir / 'audit-policy.yaml'}",
        f"--audit-log-path={workdir / 'audit.log'}",
        "--audit-log-mode=batch",
        "--audit-log-batch-max-wait=1s",
        # Never rotated (the default rotates at 100 MB, which the setup passes at 10 x 20):
        # Audit reads one file.
        "--audit-log-maxsize=1000000",
        "--audit-log-format=json",
    )
    print(f"{name} ({source}): {settings.models} models x {settings.versions} versions")
    try:
        with ControlPlane(controllers=True, apiserver_args=audit) as cp:
            kwok = subprocess.Popen(
                [
                    str(BIN / "kwok"),
                    f"--kubeconfig={cp.kubeconfig}",
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                    # Node leases as heartbeat: without them a busy kwok's status
                    # heartbeats come late, the node lifecycle controller marks its nodes
                    # NotReady and every pod on them not Ready, and nothing settles.
                    "--node-lease-duration-seconds=40",
                ],
                stdout=(workdir / "kwok.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            try:
                fake_nodes(cp, settings.nodes)
                install(cp, source / "manifests" / "overlays" / "local")
                cp.kubectl("create", "namespace", NAMESPACE)
                Run(cp, workdir, settings).measure(result)
            except Exception as error:
                result.failure = f"{type(error).__name__}: {error}"
                print(f"  FAILED: {result.failure}")
            finally:
                kwok.terminate()
                kwok.wait()
    finally:
        if keep is not None:
            target = keep / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(workdir, target, ignore=shutil.ignore_patterns("pki", "kubeconfigs"))
        shutil.rmtree(workdir, ignore_errors=True)
    report(result)
    return result


def figures(result: Result) -> dict[str, float]:
    """The table's rows for one operator."""
    nan = float("nan")
    rows: dict[str, float] = {}
    setup, steady, delays = result.setup, result.steady, result.delays
    rows["setup: wall time, s"] = result.setup_seconds
    rows["setup: writes"] = setup.count(WRITES) if setup else nan
    rows["setup: lists"] = setup.count(["list"]) if setup else nan
    rows["setup: operator CPU, s"] = setup.cpu if setup else nan
    rows["steady: writes / min"] = steady.per_minute(steady.count(WRITES)) if steady else nan
    rows["steady: lists / min"] = steady.per_minute(steady.count(["list"])) if steady else nan
    rows["steady: gets / min"] = steady.per_minute(steady.count(["get"])) if steady else nan
    rows["steady: watches opened / min"] = (
        steady.per_minute(steady.count(["watch"])) if steady else nan
    )
    rows["steady: operator CPU s / min"] = steady.per_minute(steady.cpu) if steady else nan
    rows["steady: peak RSS, MiB"] = result.rss
    rows["pause end -> next step p50, s"] = percentile(delays, 50) if delays else nan
    rows["pause end -> next step p99, s"] = percentile(delays, 99) if delays else nan
    rows["pause end -> next step max, s"] = max(delays) if delays else nan
    return rows


def report(result: Result) -> None:
    print(f"{result.name}:")
    for label, value in figures(result).items():
        print(f"  {label:34s} {value:10.2f}")
    if result.setup is not None:
        print(f"  setup writes by kind, in all:      {result.setup.kinds(WRITES, rate=False)}")
    if result.steady is not None:
        print(f"  steady writes by kind, per minute: {result.steady.kinds(WRITES) or 'none'}")
        print(f"  steady reads by kind, per minute:  {result.steady.kinds(['list', 'get'])}")
    if result.left_settled:
        print(f"  left the settled state in the window: {', '.join(result.left_settled[:5])}")
    print(
        f"  pauses measured {len(result.delays)} of {result.pauses_expected}; "
        f"errors logged {result.errors}" + (f"; FAILED: {result.failure}" if result.failure else "")
    )


def table(results: list[Result]) -> None:
    rows = [figures(r) for r in results]
    header = f"{'':34s}" + "".join(f"{r.name:>14s}" for r in results)
    ratio = len(results) == 2
    print(header + (f"{'ratio':>10s}" if ratio else ""))
    for label in rows[0]:
        line = f"{label:34s}" + "".join(f"{row[label]:14.2f}" for row in rows)
        if ratio:
            base, new = rows[0][label], rows[1][label]
            line += f"{new / base:10.2f}" if base else f"{'-':>10s}"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--versions", type=int, default=20, help="per model, settled")
    parser.add_argument("--window", type=float, default=90, help="steady window, seconds")
    parser.add_argument("--settle", type=float, default=10, help="seconds before the window")
    parser.add_argument("--pause-models", type=int, help="models given a paused rollout (all)")
    parser.add_argument("--pauses", type=int, default=3, help="timed pauses per rollout")
    parser.add_argument("--pause-seconds", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=2, help="kwok fake nodes")
    parser.add_argument("--round-timeout", type=float, default=300)
    parser.add_argument("--baseline-src", type=Path, default=Path("/work/mv-baseline"))
    parser.add_argument("--current-src", type=Path, default=REPO_ROOT)
    parser.add_argument("--only", choices=("baseline", "current"))
    parser.add_argument("--keep", type=Path, help="copy each run's logs (audit, operator) here")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come
    if not (BIN / "kwok").exists():
        # What benchmarks/scale.sh builds, without the Training Operator this one needs not.
        subprocess.run(
            ["go", "install", f"sigs.k8s.io/kwok/cmd/kwok@{KWOK}"],
            env={**os.environ, "GOBIN": str(BIN)},
            check=True,
        )
    settings = Settings(
        models=args.models,
        versions=args.versions,
        window=args.window,
        settle=args.settle,
        pause_models=min(args.pause_models or args.models, args.models),
        pauses=args.pauses,
        pause_seconds=args.pause_seconds,
        nodes=args.nodes,
        round_timeout=args.round_timeout,
    )
    contenders = [("baseline", args.baseline_src), ("current", args.current_src)]
    results = [
        run_one(name, source.resolve(), settings, args.keep)
        for name, source in contenders
        if args.only in (None, name)
    ]
    table(results)
    return 0 if all(r.failure is None for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
