"""Hostile tenants' pods against the operator that reads them: the progress poller
(replica 0 of every running TrainingJob, port 29400) and the rollout's metrics scrape
(every candidate serving pod, port 8080).

A real API server and the operator under its own RBAC. No node runs the pods: the test
sets their status through the API as a kubelet would, with a podIP on loopback
(127.x.y.z, one address per endpoint) where a hostile server of tests/hostile.py
answers: 1 GiB bodies, endless and slow bodies, endless headers, 100,000-deep JSON,
redirects to itself, gzip bombs, bytes that are not HTTP, NaN and huge numbers.

What a user sees: the hostile job shows no progress and gets one Warning Event
(ProgressUnreadable) naming the reason; a candidate whose metrics are garbage stays
at its step with an Inconclusive analysis saying why, never promoted nor rolled back.
And the operator: its other objects keep being reconciled (a normal job's progress
keeps advancing, a new job gets its pods, a normal candidate is promoted), its log has
no traceback, its liveness stays healthy and its peak RSS grows by less than 64 MiB.
"""

from __future__ import annotations

import contextlib
import json
import random
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    apply,
    events,
    free_port,
    get,
    install,
    list_pods,
    operator_process,
    wait_until,
)
from tests.hostile import HostileServer
from tests.objects import sample
from torchyard.resources.serving import PORT as SERVING_PORT
from torchyard.resources.training import PROGRESS_PORT

MIB = 1024 * 1024
RSS_GROWTH_LIMIT = 64 * MIB
"""A 1 GiB body read whole would be 16 times this; the reads are capped at 256 KiB."""

# behaviour -> words of the reason in the job's ProgressUnreadable Event
PROGRESS_REFUSED = {
    "huge-body": "body over the 64 KiB limit (1073741824 bytes declared)",
    "endless-chunked": "body over the 64 KiB limit (more sent)",
    "slow-body": "no complete answer within 2 s",
    "endless-headers": "not HTTP: Too many headers",
    "garbage": "not HTTP: Bad status line",
    "deep-json": "body over the 64 KiB limit",
    "deep-json-small": "JSON nested deeper than 4 levels",
    "redirect-self": "answered HTTP 302 (a redirect, not followed)",
    "gzip-bomb": "not JSON",
    "not-json": "not JSON",
    "bad-values": "none of step, totalSteps, epoch, loss, samplesPerSecond, updateTime",
    "huge-numbers": "Exceeds the limit (4300 digits)",
}
PROGRESS_SILENT = ("slow-headers",)
"""Answers nothing in time: how a pod looks while it starts, so no Event."""

# behaviour -> words of the reason in the candidate's Progressing condition
METRICS_UNREADABLE = {
    "bad-values": "torchyard_inference_requests_total is 'NaN': not a finite number",
    "huge-numbers": "is '1e300': beyond 2^53",
    "contradictory": "buckets are not cumulative",
    "long-line": "a line over 1024 characters",
    "huge-body": "/metrics body over the 256 KiB limit",
    "slow-body": "/metrics no complete answer within 2 s",
    "redirect-self": "/metrics answered HTTP 302",
    "garbage": "/metrics not HTTP",
}


class Operator:
    def __init__(self, pid: int, log: Path, liveness: str) -> None:
        self.pid, self.log, self.liveness = pid, log, liveness

    def memory(self, field: str) -> int:
        """VmRSS (now) or VmHWM (peak) of the operator process, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise LookupError(field)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.liveness, timeout=10) as response:
            assert response.status == 200
            return json.loads(response.read())


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory) -> Iterator[Operator]:
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    with operator_process(kubeconfig, log, f"--liveness={liveness}") as process:
        yield Operator(process.pid, log, liveness)


def _loopback() -> str:
    """A loopback address of its own for each endpoint (the ports are fixed)."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@contextlib.contextmanager
def _servers(behaviours: list[str], port: int) -> Iterator[dict[str, HostileServer]]:
    with contextlib.ExitStack() as stack:
        yield {b: stack.enter_context(HostileServer(b, _loopback(), port)) for b in behaviours}


def _run_pod(control_plane, namespace: str, name: str, ip: str) -> None:
    """What a kubelet would write once the pod's container runs and is ready."""
    status = {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
            ],
            "containerStatuses": [
                {
                    "name": name.rsplit("-", 1)[0][:60],
                    "image": "x",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                }
            ],
        }
    }
    control_plane.kubectl(
        "patch",
        "pod",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def _events(control_plane, namespace: str, name: str, reason: str) -> list[dict[str, Any]]:
    selector = f"--field-selector=involvedObject.name={name},reason={reason}"
    return get(control_plane, "events", "-n", namespace, selector)["items"]


def _no_traceback(log: Path) -> None:
    text = log.read_text()
    assert "Traceback" not in text, text[text.index("Traceback") - 2000 :][:6000]


def _training_job(name: str) -> dict[str, Any]:
    job = sample("TrainingJob")
    job["metadata"] = {"name": name}
    job["spec"].pop("registerAs", None)
    return job


def _start_jobs(control_plane, namespace: str, names: list[str]) -> None:
    """Apply a job per name and wait for its two pods."""
    for name in names:
        apply(control_plane, namespace, _training_job(name))
    for name in names:
        selector = f"torchyard.io/trainingjob={name}"
        wait_until(
            f"{name}'s pods", lambda s=selector: len(list_pods(control_plane, namespace, s)) > 1
        )


def _run_jobs(control_plane, namespace: str, jobs: dict[str, str]) -> None:
    """Run each job's pods; replica 0 answers at the address given."""
    for name, ip in jobs.items():
        for pod in list_pods(control_plane, namespace, f"torchyard.io/trainingjob={name}"):
            pod_name = pod["metadata"]["name"]
            replica0 = pod_name.endswith("-worker-0")
            _run_pod(control_plane, namespace, pod_name, ip if replica0 else "127.0.0.1")


def _job(control_plane, namespace: str, name: str) -> dict[str, Any]:
    return get(control_plane, "tjob", name, "-n", namespace)


def test_hostile_progress_endpoints_cost_the_operator_nothing(control_plane, namespace, operator):
    behaviours = [*PROGRESS_REFUSED, *PROGRESS_SILENT, "partly-good", "normal"]
    with _servers(behaviours, PROGRESS_PORT) as servers:
        jobs = {f"p-{b}": servers[b].address[0] for b in behaviours}
        _start_jobs(control_plane, namespace, list(jobs))
        # The operator's peak so far is its cost of these objects; what follows is
        # the cost of polling the hostile pods.
        peak_before = operator.memory("VmHWM")
        _run_jobs(control_plane, namespace, jobs)
        wait_until(
            "every job Running",
            lambda: all(
                (_job(control_plane, namespace, n).get("status") or {}).get("phase") == "Running"
                for n in jobs
            ),
            timeout=90,
        )
        wait_until(
            "three polls of every endpoint",
            lambda: all(server.hits >= 3 for server in servers.values()),
            timeout=120,
        )
        # The poller lives on: the normal job's progress still advances after all that.
        step = _job(control_plane, namespace, "p-normal")["status"]["progress"]["step"]
        wait_until(
            "the normal job's progress to advance",
            lambda: _job(control_plane, namespace, "p-normal")["status"]["progress"]["step"] > step,
            timeout=30,
        )
        # And reconciles go on: a new job gets its pods.
        apply(control_plane, namespace, _training_job("after"))
        wait_until(
            "the new job's pods",
            lambda: len(list_pods(control_plane, namespace, "torchyard.io/trainingjob=after")) == 2,
        )

        for behaviour, words in PROGRESS_REFUSED.items():
            name = f"p-{behaviour}"
            status = _job(control_plane, namespace, name)["status"]
            assert "progress" not in status, (behaviour, status)
            unreadable = events(control_plane, namespace, name, "ProgressUnreadable")
            assert len(unreadable) == 1, (behaviour, unreadable)
            assert unreadable[0]["type"] == "Warning", (behaviour, unreadable)
            assert words in unreadable[0]["message"], (behaviour, unreadable[0]["message"])
        for behaviour in PROGRESS_SILENT:
            name = f"p-{behaviour}"
            assert "progress" not in _job(control_plane, namespace, name)["status"]
            assert not _events(control_plane, namespace, name, "ProgressUnreadable")
        partly = _job(control_plane, namespace, "p-partly-good")["status"]
        assert partly["progress"] == {"step": 7, "totalSteps": 10}  # the NaN loss left out
        assert partly["progressSummary"] == "7/10"

    assert operator.health()["backgroundTasks"]["progress-poller"] == "running"
    grown = operator.memory("VmHWM") - peak_before
    assert grown < RSS_GROWTH_LIMIT, f"peak RSS grew by {grown / MIB:.0f} MiB"
    _no_traceback(operator.log)


def _model_version(model: str, version: str, analysed: bool) -> dict[str, Any]:
    obj = sample("ModelVersion")
    obj["metadata"] = {"name": f"{model}-v{version}"}
    obj["spec"]["model"] = model
    obj["spec"]["version"] = version
    if analysed:
        obj["spec"]["rollout"] = {
            "steps": [{"setWeight": 50}],
            "analysis": {"intervalSeconds": 3, "failureLimit": 1, "minRequestCount": 1},
        }
    return obj


def _serve(control_plane, namespace: str, models: dict[str, str], version: str) -> None:
    """Apply `version` of each model and wait for its serving pod (not yet ready)."""
    for model in models:
        apply(control_plane, namespace, _model_version(model, version, version != "1"))
    for model in models:
        selector = f"torchyard.io/modelversion={model}-v{version}"
        wait_until(
            f"{model}-v{version}'s pod",
            lambda s=selector: list_pods(control_plane, namespace, s),
            timeout=60,
        )


def _ready(control_plane, namespace: str, models: dict[str, str], version: str) -> None:
    """Make each model's `version` pod ready, answering at the address given."""
    for model, ip in models.items():
        selector = f"torchyard.io/modelversion={model}-v{version}"
        pods = list_pods(control_plane, namespace, selector)
        _run_pod(control_plane, namespace, pods[0]["metadata"]["name"], ip)


def _mv(control_plane, namespace: str, name: str) -> dict[str, Any]:
    return get(control_plane, "mv", name, "-n", namespace).get("status") or {}


def _progressing(status: dict[str, Any]) -> str:
    return next(
        (c["message"] for c in status.get("conditions", []) if c["type"] == "Progressing"), ""
    )


def test_hostile_metrics_never_pass_nor_fail_a_rollout(control_plane, namespace, operator):
    behaviours = [*METRICS_UNREADABLE, "normal"]
    models = {b: f"m-{b}" for b in behaviours}
    with _servers(behaviours, SERVING_PORT) as servers:
        # Version 1 of each model serves (nothing listens at its address: not scraped
        # once it is stable); version 2's pod answers /metrics with the hostile server.
        first = {m: _loopback() for m in models.values()}
        _serve(control_plane, namespace, first, "1")
        _ready(control_plane, namespace, first, "1")
        wait_until(
            "every version 1 Serving",
            lambda: all(
                _mv(control_plane, namespace, f"{m}-v1").get("phase") == "Serving"
                for m in models.values()
            ),
            timeout=90,
        )
        candidates = {models[b]: servers[b].address[0] for b in behaviours}
        _serve(control_plane, namespace, candidates, "2")
        # The operator's peak so far is its cost of these objects; what follows is
        # the cost of reading the hostile pods.
        peak_before = operator.memory("VmHWM")
        _ready(control_plane, namespace, candidates, "2")
        # The control: a candidate with good metrics passes its analysis and is promoted.
        wait_until(
            "the normal candidate promoted",
            lambda: _mv(control_plane, namespace, "m-normal-v2").get("phase") == "Serving",
            timeout=120,
        )
        wait_until(
            "three analyses' scrapes of every hostile candidate",
            lambda: all(servers[b].hits >= 6 for b in METRICS_UNREADABLE),
            timeout=120,
        )
        for behaviour, words in METRICS_UNREADABLE.items():
            status = _mv(control_plane, namespace, f"m-{behaviour}-v2")
            assert status.get("phase") == "Progressing", (behaviour, status)
            assert status["analysis"]["verdict"] == "Inconclusive", (behaviour, status)
            assert status["analysis"]["failures"] == 0
            message = _progressing(status)
            assert "last analysis Inconclusive" in message, (behaviour, message)
            assert words in message, (behaviour, message)
            assert _mv(control_plane, namespace, f"m-{behaviour}-v1")["phase"] == "Serving"

    assert operator.health()["backgroundTasks"]["progress-poller"] == "running"
    grown = operator.memory("VmHWM") - peak_before
    assert grown < RSS_GROWTH_LIMIT, f"peak RSS grew by {grown / MIB:.0f} MiB"
    _no_traceback(operator.log)
