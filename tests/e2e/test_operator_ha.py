"""Operator HA: two replicas with kopf peering (overlays/local-ha); only the one with the
higher priority acts, and when it is killed the other takes over without losing or
duplicating work."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
import torch

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    apply,
    get,
    install,
    operator_process,
    wait_for,
    wait_until,
)
from torchyard.workloads.models import mlp

pytestmark = pytest.mark.e2e
LIFETIME = 10
RESUMED = "Resuming operations after the pause"


@pytest.fixture(scope="module")
def model_uri():
    directory = Path("/opt") / f"torchyard-e2e-{secrets.token_hex(4)}"
    directory.mkdir(parents=True)
    torch.save(mlp().state_dict(), directory / "model.pt")
    os.chmod(directory, 0o755)
    os.chmod(directory / "model.pt", 0o644)
    yield f"file://{directory}/model.pt"
    shutil.rmtree(directory, ignore_errors=True)


def _training(name, model_uri):
    return {
        "apiVersion": "torchyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "parallelism": {"mode": "data", "replicas": 2},
            "model": {
                "uri": model_uri,
                "format": "state_dict",
                "factory": "torchyard.workloads.models:mlp",
            },
            "dataset": {"uri": "builtin://digits"},
            "hyperparameters": {"epochs": 1, "maxSteps": 40, "globalBatchSize": 64},
            "checkpoint": {"uri": f"pvc://training/{name}/ckpt", "intervalSteps": 10},
            "output": {"uri": f"pvc://training/{name}/model"},
        },
    }


def _pods(cluster, namespace, job):
    pods = get(cluster.cp, "pods", "-n", namespace, f"-l=torchyard.io/trainingjob={job}")
    return {pod["metadata"]["name"]: pod["metadata"]["uid"] for pod in pods["items"]}


def test_one_replica_acts_and_the_other_takes_over_when_it_is_killed(
    cluster, namespace, model_uri, tmp_path
):
    install(cluster.cp, "manifests/overlays/local-ha")
    kubeconfig = cluster.cp.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    # --verbose keeps the log line per API request, which tells who talked to the API.
    peering = (
        "--liveness=",
        "--verbose",
        "--peering=torchyard",
        f"--peering-lifetime={LIFETIME}",
    )
    active_log, standby_log = tmp_path / "active.log", tmp_path / "standby.log"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "training", "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    with operator_process(kubeconfig, active_log, *peering, "--priority=200") as active:
        wait_until("the active replica in the peering", lambda: _peers(cluster) == 1, timeout=60)
        with operator_process(kubeconfig, standby_log, *peering, "--priority=100"):
            # A replica that meets a higher priority at start never resumes (kopf starts
            # paused when peering is mandatory); one that was acting logs PAUSED.
            wait_until("the standby in the peering", lambda: _peers(cluster) == 2, timeout=60)
            _run_and_fail_over(cluster, namespace, model_uri, active, active_log, standby_log)


def _peers(cluster) -> int:
    peering = cluster.get("clusterkopfpeering", "torchyard", "default") or {}
    return len(peering.get("status") or {})


def _run_and_fail_over(cluster, namespace, model_uri, active, active_log, standby_log):
    touched = f"/namespaces/{namespace}/"
    apply(cluster.cp, namespace, _training("before", model_uri))
    wait_until(
        "both pods of the first job",
        lambda: len(_pods(cluster, namespace, "before")) == 2,
        timeout=120,
    )
    pods_before = _pods(cluster, namespace, "before")
    # Only the active replica talks to the API about the job (a log line per request).
    assert f"{touched}trainingjobs/before" in active_log.read_text()
    assert touched not in standby_log.read_text()
    assert RESUMED not in standby_log.read_text()

    active.kill()  # SIGKILL: no goodbye in the peering object
    active.wait()
    wait_until(
        "the standby resumes",
        lambda: RESUMED in standby_log.read_text(),
        timeout=LIFETIME * 4,
    )
    apply(cluster.cp, namespace, _training("after", model_uri))

    for name in ("before", "after"):
        wait_for(cluster.cp, namespace, f"tjob/{name}", "Succeeded", 400)
    before = get(cluster.cp, "tjob", "before", "-n", namespace)["status"]
    # Not lost, not duplicated: the same two pods ran the job to the end, no restart.
    assert before.get("restarts", 0) == 0
    assert _pods(cluster, namespace, "before") == pods_before
    assert f"{touched}trainingjobs/after" in standby_log.read_text()
