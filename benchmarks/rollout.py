"""ModelVersion timings on the local cluster: apply -> Ready, and automatic rollback;
with --measure weights, the share of requests each version served through the model's
router against the share configured; with --measure quality, how long and how many
requests quality analysis takes to roll back a version that answers 200 but worse; with
--measure handback, how soon a rolled-back version stops answering.

    .venv/bin/python benchmarks/rollout.py [--rounds 3]
        [--measure timings|weights|quality|handback]
                                                              (as root: the node agent)

Starts its own control plane, node agent (own bridge and subnet) and operator, then:

- apply -> Ready of a model's first version (`kubectl wait --for=condition=Ready`),
  against the baseline of the same server pod as a plain Deployment: apply -> its pod
  Ready (what Kubernetes and the server cost without the operator);
- with a client sending requests through the model's Service, a version whose every
  answer is a 500: its first failing analysis -> RolledBack, and -> its pods gone (no
  more traffic), against the configured bound interval x (failureLimit - 1).

--measure weights (through the model's router, on unless TORCHYARD_MODEL_ROUTER=off,
which the operator started here inherits): v1 serving, then a candidate at setWeight 10,
25 and 50 (one pod per version), 2,000 requests through the model's Service each: the
share the candidate answered and its status.weight, against the configured weight and
against what replica ratios (the Service over the serving pods, no router) would give
with these pods.

--measure quality: v1 a digits classifier trained here, serving, with a client sending
requests through the model's Service; then, each round, the same classifier over-pruned
(97 % of its weights removed: every answer a 200) rolled out at 50 % with
analysis.quality (agreement with v1 on 32 reference rows, minScore 0.9): its pod ready
-> RolledBack (QualityRegression), against the bound intervalSeconds x failureLimit, and
the requests it answered in that time (all 200: the error rate never sees it).

--measure handback: one client sends requests through the model's Service all along;
each round rolls out a new version at 50 % (one pod per version), lets it answer for 3
s, then sets spec.rollback: true. Measured: from the patch to the rolled-back version's
last answer (the client's clock, the same host's), --rounds times, once through the
model's router (the default) and once without it (TORCHYARD_MODEL_ROUTER=off: the
Service over the serving pods, which the pod leaves), each with an operator of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from torchyard.api.modelversion import ModelVersionSpec
from torchyard.controllers.modelversion import ROUTER_ENV
from torchyard.images import WORKER_IMAGE
from torchyard.local.agent import launcher
from torchyard.local.controlplane import ControlPlane
from torchyard.local.stack import REPO_ROOT, install, start_operator, stop_operator
from torchyard.resources.serving import serving_deployment
from torchyard.workloads.artifacts import save_artifact
from torchyard.workloads.models import mlp

NAMESPACE = "bench"
INTERVAL, FAILURE_LIMIT = 2, 2


def version(
    number: str, uri: str, digest: str, model: str = "digits", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{number}", "namespace": NAMESPACE},
        "spec": {
            "model": model,
            "version": number,
            "artifact": {"uri": uri, "digest": digest},
            **spec,
        },
    }


def apply(cp: ControlPlane, *objects: dict[str, Any]) -> None:
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))


def get(cp: ControlPlane, *args: str) -> dict[str, Any]:
    result = cp.kubectl(
        "get", *args, "-n", NAMESPACE, "-o", "json", "--request-timeout=10s", check=False
    )
    return json.loads(result.stdout) if result.returncode == 0 else {}


def poll(check: Callable[[], Any], timeout: float = 300.0, every: float = 0.1) -> float:
    """Seconds until check() is truthy."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise TimeoutError("gave up waiting")
        time.sleep(every)
    return time.monotonic() - began


def status(cp: ControlPlane, name: str) -> dict[str, Any]:
    return get(cp, "mv", name).get("status") or {}


def wait_no_pods(cp: ControlPlane) -> None:
    """A terminating pod still holds its share of the node: start each run on an empty one."""
    poll(lambda: not get(cp, "pods").get("items"), timeout=120)


def baseline_ready(cp: ControlPlane, uri: str, digest: str, model: str) -> float:
    """The same server pod as a plain Deployment, no operator: apply -> pod Ready."""
    spec = ModelVersionSpec.model_validate(version("1", uri, digest, model)["spec"])
    deployment = serving_deployment(f"{model}-plain", NAMESPACE, spec, replicas=1)
    name = deployment["metadata"]["name"]
    began = time.monotonic()
    apply(cp, deployment)
    poll(lambda: (get(cp, "deploy", name).get("status") or {}).get("readyReplicas") == 1)
    took = time.monotonic() - began
    cp.kubectl("delete", "deploy", name, "-n", NAMESPACE)
    wait_no_pods(cp)
    return took


def first_version_ready(cp: ControlPlane, uri: str, digest: str, model: str) -> float:
    began = time.monotonic()
    apply(cp, version("1", uri, digest, model))
    cp.kubectl("wait", f"mv/{model}-v1", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=300s")
    took = time.monotonic() - began
    cp.kubectl("delete", "mv", f"{model}-v1", "-n", NAMESPACE)
    wait_no_pods(cp)
    return took


def rollback_round(cp: ControlPlane, uri: str, digest: str, number: str) -> tuple[float, float]:
    """A failing version: (first failing analysis -> RolledBack, -> its pods gone)."""
    name = f"digits-v{number}"
    rollout = {
        "steps": [{"setWeight": 50}, {"pause": {}}],
        "analysis": {
            "intervalSeconds": INTERVAL,
            "failureLimit": FAILURE_LIMIT,
            "minRequestCount": 3,
        },
    }
    faulty = {"env": [{"name": "TORCHYARD_FAULT_RATE", "value": "1.0"}]}
    apply(cp, version(number, uri, digest, rollout=rollout, serving=faulty))
    poll(lambda: (status(cp, name).get("analysis") or {}).get("verdict") == "Fail")
    failed_at = time.monotonic()
    poll(lambda: status(cp, name).get("phase") == "RolledBack")
    rolled_back = time.monotonic() - failed_at
    poll(lambda: not get(cp, "pods", "-l", f"torchyard.io/modelversion={name}").get("items"))
    return rolled_back, time.monotonic() - failed_at


def client_pod(url: str, stop: Path) -> dict[str, Any]:
    command = ["python", "-m", "torchyard.workloads.serve.client", url, "--stop-file", str(stop)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": WORKER_IMAGE,
                    "command": [*command, "--output", "/dev/termination-log"],
                }
            ],
        },
    }


def requests_pod(name: str, url: str, requests: int) -> dict[str, Any]:
    """A client that sends `requests` inference requests, one after another, and ends."""
    pod = client_pod(url, Path("/nonexistent"))
    pod["metadata"]["name"] = name
    pod["spec"]["containers"][0]["command"] = [
        "python",
        "-m",
        "torchyard.workloads.serve.client",
        url,
        "--requests",
        str(requests),
        "--interval",
        "0",
        "--output",
        "/dev/termination-log",
    ]
    return pod


def routed(cp: ControlPlane, model: str) -> bool:
    service = get(cp, "service", f"{model}-model")
    return (service.get("spec") or {}).get("selector", {}).get("torchyard.io/router") == "true"


def weights(cp: ControlPlane, root: Path, requests: int) -> None:
    cp.kubectl("create", "namespace", NAMESPACE)
    poll(lambda: cp.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0)
    artifact = save_artifact(
        f"file://{root}/v", mlp(), base={"factory": "torchyard.workloads.models:mlp"}
    )
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    apply(cp, version("1", artifact.uri, artifact.digest))
    cp.kubectl("wait", "mv/digits-v1", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=300s")
    url = status(cp, "digits-v1")["url"]
    print(f"{requests} requests per weight, one pod per version, through the model's Service")
    print("  configured   served   status.weight   replica ratios would serve")
    for number, weight in (("2", 10), ("3", 25), ("4", 50)):
        name = f"digits-v{number}"
        rollout = {"steps": [{"setWeight": weight}, {"pause": {}}]}
        apply(cp, version(number, artifact.uri, artifact.digest, rollout=rollout))
        poll(
            lambda name=name, weight=weight: (
                (s := status(cp, name)).get("desiredWeight") == weight
                and s.get("readyReplicas") == 1
                and routed(cp, "digits")
            )
        )
        ready = {n: status(cp, n).get("readyReplicas") or 0 for n in ("digits-v1", name)}
        ratio = 100 * ready[name] / max(1, sum(ready.values()))
        client = f"weights-{number}"
        apply(cp, requests_pod(client, url, requests))
        poll(
            lambda client=client: (
                (get(cp, "pod", client).get("status") or {}).get("phase") in ("Succeeded", "Failed")
            )
        )
        ended = get(cp, "pod", client)["status"]["containerStatuses"][0]["state"]["terminated"]
        counts = json.loads(ended["message"])
        served = 100 * counts.get(number, [0, 0])[0] / requests
        # status.weight: the routers' count, read every 10 s while two versions serve.
        poll(
            lambda name=name, served=served: abs(status(cp, name).get("weight", -99) - served) <= 1,
            timeout=60,
        )
        said = status(cp, name)["weight"]
        print(f"  {weight:7d} %   {served:6.2f} %   {said:9d} %        {ratio:6.1f} %   {counts}")
        cp.kubectl("delete", "mv", name, "-n", NAMESPACE)
        cp.kubectl("delete", "pod", client, "-n", NAMESPACE)
        poll(
            lambda name=name: (
                not get(cp, "pods", "-l", f"torchyard.io/modelversion={name}").get("items")
            )
        )


def quality(cp: ControlPlane, root: Path, rounds: int) -> None:
    # The tests' classifiers: trained here, and over-pruned.
    sys.path.insert(0, str(REPO_ROOT))
    from tests.workload.quality import BASE, over_pruned, reference, trained

    cp.kubectl("create", "namespace", NAMESPACE)
    poll(lambda: cp.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0)
    good = save_artifact(f"file://{root}/trained", trained(), base=BASE)
    bad = save_artifact(f"file://{root}/over-pruned", over_pruned(), base=BASE)
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    apply(cp, version("1", good.uri, good.digest))
    cp.kubectl("wait", "mv/digits-v1", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=300s")
    stop = root / "stop"
    apply(cp, client_pod(status(cp, "digits-v1")["url"], stop))
    poll(lambda: (get(cp, "pod", "client").get("status") or {}).get("phase") == "Running")
    analysis = {
        "intervalSeconds": INTERVAL,
        "failureLimit": FAILURE_LIMIT,
        "minRequestCount": 3,
        "quality": reference("agreement", 0.9, rows=32),
    }
    detected, scores = [], []
    for i in range(rounds):
        number = str(2 + i)
        name = f"digits-v{number}"
        rollout = {"steps": [{"setWeight": 50}, {"pause": {}}], "analysis": analysis}
        apply(cp, version(number, bad.uri, bad.digest, rollout=rollout))
        poll(lambda name=name: status(cp, name).get("readyReplicas") == 1)
        ready_at = time.monotonic()
        poll(lambda name=name: status(cp, name).get("phase") == "RolledBack")
        detected.append(time.monotonic() - ready_at)
        ended = status(cp, name)
        reason = next(c for c in ended["conditions"] if c["type"] == "Progressing")["reason"]
        scores.append(f"{reason} at agreement {ended['analysis']['quality']['score']:.3f}")
        poll(
            lambda name=name: (
                not get(cp, "pods", "-l", f"torchyard.io/modelversion={name}").get("items")
            )
        )
    stop.touch()
    poll(lambda: (get(cp, "pod", "client").get("status") or {}).get("phase") == "Succeeded")
    ended = get(cp, "pod", "client")["status"]["containerStatuses"][0]["state"]["terminated"]
    counts = json.loads(ended["message"])
    answered = [counts.get(str(2 + i), [0, 0]) for i in range(rounds)]
    print(
        f"quality regression (over-pruned digits classifier at 50 %; intervalSeconds {INTERVAL}, "
        f"failureLimit {FAILURE_LIMIT}: bound {INTERVAL * FAILURE_LIMIT} s), {rounds} rounds"
    )
    print(f"  its pod ready -> RolledBack                  {summary(detected)}")
    print(f"  requests it answered [ok, failed] by round   {answered}")
    print(f"  outcome by round                             {scores}")
    print(f"client answers by version [ok, failed]: {json.dumps(counts, sort_keys=True)}")


def handback_rounds(cp: ControlPlane, root: Path, model: str, rounds: int) -> list[float]:
    """Seconds from each round's rollback patch to the rolled-back version's last answer."""
    artifact = save_artifact(
        f"file://{root}/{model}", mlp(), base={"factory": "torchyard.workloads.models:mlp"}
    )
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    apply(cp, version("1", artifact.uri, artifact.digest, model))
    cp.kubectl("wait", f"mv/{model}-v1", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=300s")
    stop = root / f"stop-{model}"
    client = client_pod(status(cp, f"{model}-v1")["url"], stop)
    client["metadata"]["name"] = f"client-{model}"
    command = client["spec"]["containers"][0]["command"]
    command[-2:-2] = ["--times", "--interval", "0.01"]
    apply(cp, client)
    poll(lambda: (get(cp, "pod", f"client-{model}").get("status") or {}).get("phase") == "Running")
    patched = {}
    for i in range(rounds):
        number = str(2 + i)
        name = f"{model}-v{number}"
        # A fast analysis: the 50 % step waits for one that passes.
        analysis = {"intervalSeconds": INTERVAL, "minRequestCount": 3}
        rollout = {"steps": [{"setWeight": 50}, {"pause": {}}], "analysis": analysis}
        apply(cp, version(number, artifact.uri, artifact.digest, model, rollout=rollout))
        poll(
            lambda name=name: (
                (s := status(cp, name)).get("phase") == "Paused" and s.get("readyReplicas") == 1
            )
        )
        time.sleep(3)  # it answers its share
        patched[number] = time.time()
        cp.kubectl(
            "patch", "mv", name, "-n", NAMESPACE, "--type=merge",
            "-p", '{"spec":{"rollback":true}}',
        )  # fmt: skip
        # The next round starts while this version's pod drains: its last answer is
        # counted by version either way.
        poll(lambda name=name: status(cp, name).get("phase") == "RolledBack", timeout=60)
    time.sleep(5)
    stop.touch()
    pod = f"client-{model}"
    poll(lambda: (get(cp, "pod", pod).get("status") or {}).get("phase") == "Succeeded")
    ended = get(cp, "pod", pod)["status"]["containerStatuses"][0]["state"]["terminated"]
    answers = json.loads(ended["message"])
    seen, counts = answers["seen"], answers["counts"]
    missing = [n for n in patched if n not in seen]
    if missing:
        print(f"  versions that never answered (rounds not measured): {missing}")
    failed = {v: c[1] for v, c in counts.items() if c[1]}
    print(f"  {model}: answers by version [ok, failed] {json.dumps(counts, sort_keys=True)}")
    if failed:
        print(f"  failed answers: {failed}")
    return [seen[n][1] - patched[n] for n in patched if n in seen]


def handback(cp: ControlPlane, root: Path, rounds: int, workdir: Path) -> None:
    cp.kubectl("create", "namespace", NAMESPACE)
    poll(lambda: cp.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0)
    results = {}
    for mode, model in (("off", "direct"), ("on", "routed")):
        stop_operator(workdir)
        os.environ[ROUTER_ENV] = mode
        start_operator(cp, workdir)
        results[mode] = handback_rounds(cp, root, model, rounds)
    print(f"spec.rollback: true -> the rolled-back version's last answer, {rounds} rounds")
    for mode, label in (("on", "through the model's router"), ("off", "Service over the pods")):
        values = sorted(results[mode])
        p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))] if values else None
        shown = f"{summary(values)}  p99 {p99:.2f} s" if values else "no round measured"
        print(f"  {label:28s} {shown}")


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):5.2f} s  (min {min(values):.2f}, max {max(values):.2f})"
    )


def measure(cp: ControlPlane, root: Path, rounds: int) -> None:
    cp.kubectl("create", "namespace", NAMESPACE)
    poll(lambda: cp.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0)
    artifacts = {}
    for number in ["1", *(str(2 + i) for i in range(rounds))]:
        artifacts[number] = save_artifact(
            f"file://{root}/v{number}", mlp(), base={"factory": "torchyard.workloads.models:mlp"}
        )
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)

    v1 = artifacts["1"]
    baseline_ready(cp, v1.uri, v1.digest, "warmup")  # first start fills the page cache
    plain, first = [], []
    for i in range(rounds):  # interleaved, so that neither gets the warmer caches
        plain.append(baseline_ready(cp, v1.uri, v1.digest, f"plain{i}"))
        first.append(first_version_ready(cp, v1.uri, v1.digest, f"ready{i}"))
    apply(cp, version("1", v1.uri, v1.digest))
    cp.kubectl("wait", "mv/digits-v1", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=300s")

    stop = root / "stop"
    apply(cp, client_pod(status(cp, "digits-v1")["url"], stop))
    poll(lambda: (get(cp, "pod", "client").get("status") or {}).get("phase") == "Running")
    to_rolled_back, to_gone = [], []
    for i in range(rounds):
        number = str(2 + i)
        artifact = artifacts[number]
        rolled_back, gone = rollback_round(cp, artifact.uri, artifact.digest, number)
        to_rolled_back.append(rolled_back)
        to_gone.append(gone)
    stop.touch()
    poll(lambda: (get(cp, "pod", "client").get("status") or {}).get("phase") == "Succeeded")
    ended = get(cp, "pod", "client")["status"]["containerStatuses"][0]["state"]["terminated"]
    counts = json.loads(ended["message"])

    print("apply -> Ready")
    print(f"  ModelVersion, a model's first version      {summary(first)}  ({rounds} runs)")
    print(f"  baseline: plain Deployment, same pod       {summary(plain)}  ({rounds} runs)")
    print(
        f"automatic rollback (intervalSeconds {INTERVAL}, failureLimit {FAILURE_LIMIT}; "
        f"bound interval x (limit - 1) = {INTERVAL * (FAILURE_LIMIT - 1)} s), {rounds} rounds"
    )
    print(f"  first failing analysis -> RolledBack         {summary(to_rolled_back)}")
    print(f"  first failing analysis -> its pods gone      {summary(to_gone)}")
    print(f"client answers by version [ok, failed]: {json.dumps(counts, sort_keys=True)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--measure", choices=("timings", "weights", "quality", "handback"), default="timings"
    )
    parser.add_argument("--requests", type=int, default=2000, help="per weight (weights)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the node agent needs root", file=sys.stderr)
        return 1
    # Pods see the host's files read-only, and /tmp is their own: artifacts go under /opt.
    root = Path("/opt") / f"torchyard-bench-{secrets.token_hex(4)}"
    root.mkdir(parents=True)
    state = Path(tempfile.mkdtemp(prefix="torchyard-bench-agent-"))
    workdir = Path(tempfile.mkdtemp(prefix="torchyard-bench-operator-"))
    try:
        with ControlPlane(controllers=True) as cp:
            flags = launcher.isolated_network_flags("tr")
            agent = launcher.start(cp, state, node="torchyard-bench", extra=flags)
            try:
                install(cp, REPO_ROOT / "manifests" / "base")
                start_operator(cp, workdir)
                try:
                    if args.measure == "weights":
                        weights(cp, root, args.requests)
                    elif args.measure == "quality":
                        quality(cp, root, args.rounds)
                    elif args.measure == "handback":
                        handback(cp, root, args.rounds, workdir)
                    else:
                        measure(cp, root, args.rounds)
                finally:
                    stop_operator(workdir)
            finally:
                launcher.stop(agent)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
