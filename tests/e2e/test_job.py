"""A batch/v1 Job runs to completion through the real controller-manager, scheduler and
node agent; so does the quickstart's example Job."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.e2e.conftest import container_status, python_pod
from tests.objects import REPO
from torchyard.images import WORKER_IMAGE

pytestmark = pytest.mark.e2e


def _wait_complete(cluster, name, namespace, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = cluster.get("job", name, namespace)
        conditions = {
            c["type"]: c["status"] for c in (job or {}).get("status", {}).get("conditions", [])
        }
        if conditions.get("Complete") == "True" or conditions.get("Failed") == "True":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {name} did not finish: {json.dumps((job or {}).get('status'))}")


def test_a_job_runs_to_completion(cluster, namespace):
    template = python_pod("unused", namespace, "print('work done')")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "work", "namespace": namespace},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "backoffLimit": 0,
            "template": {"spec": template["spec"]},
        },
    }
    cluster.apply(job)
    job = _wait_complete(cluster, "work", namespace)
    assert job["status"].get("succeeded") == 2
    assert {c["type"] for c in job["status"]["conditions"] if c["status"] == "True"} >= {"Complete"}
    pods = json.loads(
        cluster.cp.kubectl(
            "get", "pods", "-n", namespace, "-l", "job-name=work", "-o", "json"
        ).stdout
    )["items"]
    assert len(pods) == 2
    assert all(p["spec"]["nodeName"] == cluster.node for p in pods)
    assert all(container_status(p)["state"]["terminated"]["exitCode"] == 0 for p in pods)


def test_the_quickstart_example_job_runs_and_reports(cluster, namespace):
    job = yaml.safe_load((REPO / "manifests" / "examples" / "hello-job.yaml").read_text())
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == WORKER_IMAGE
    job["metadata"]["namespace"] = namespace
    cluster.apply(job)  # the namespace enforces the restricted Pod Security Standard
    _wait_complete(cluster, "hello", namespace, timeout=120)
    pods = json.loads(
        cluster.cp.kubectl(
            "get", "pods", "-n", namespace, "-l", "job-name=hello", "-o", "json"
        ).stdout
    )["items"]
    message = json.loads(container_status(pods[0], "hello")["state"]["terminated"]["message"])
    assert message["sum"] == 6.0
    assert message["pod"] == pods[0]["metadata"]["name"]
    assert message["podIP"] == pods[0]["status"]["podIP"]
