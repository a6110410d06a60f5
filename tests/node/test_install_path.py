"""The user's install path, in real containers: both images from `scripts/images build`,
loaded into the container node (`scripts/images load-local`), the operator installed with
`kubectl apply --server-side -k manifests/base` and running as its Deployment, then the
mission (`torchyard local quickstart`: a 2-replica TrainingJob, two CompressionJobs and
ModelVersion rollouts under client traffic) in a namespace that enforces `restricted`.
Each command is the one the README gives a user. Tests run in file order."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.images.conftest import images_command
from tests.node.conftest import NodeCluster
from tests.objects import REPO

pytestmark = [pytest.mark.node, pytest.mark.images]

OPERATOR_NS = "torchyard-system"
DEMO_NS = "torchyard-demo"
MISSION_TIMEOUT = 1200


def _json(node: NodeCluster, *args: str) -> Any:
    return json.loads(node.cp.kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def installed(node: NodeCluster) -> Iterator[NodeCluster]:
    images_command("build")
    images_command("load-local", env=node.env)
    node.cp.kubectl("apply", "--server-side", "-k", str(REPO / "manifests" / "base"))
    node.cp.kubectl(
        "rollout", "status", "deploy/torchyard-operator", "-n", OPERATOR_NS, "--timeout=180s",
        timeout=240,
    )  # fmt: skip
    yield node


def test_the_operator_runs_as_its_deployment_in_a_container(installed: NodeCluster) -> None:
    pods = _json(
        installed,
        "get",
        "pods",
        "-n",
        OPERATOR_NS,
        "-l",
        "app.kubernetes.io/name=torchyard-operator",
    )["items"]
    (pod,) = pods
    assert pod["spec"]["serviceAccountName"] == "torchyard-operator"
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] and status["containerID"].startswith("containerd://"), status
    assert status["restartCount"] == 0, status
    # Logged in with the pod's own token (kopf's in-cluster login), a moment after it
    # became ready.
    deadline = time.monotonic() + 60
    while True:
        log = installed.cp.kubectl("logs", pod["metadata"]["name"], "-n", OPERATOR_NS).stdout
        if "Activity 'login_with_service_account' succeeded" in log:
            break
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(1)


def test_the_mission_runs_in_containers_in_a_restricted_namespace(
    installed: NodeCluster,
) -> None:
    mission = subprocess.run(
        [sys.executable, "-m", "torchyard.cli", "local", "quickstart"],
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=MISSION_TIMEOUT,
        check=False,
    )
    assert mission.returncode == 0, f"{mission.stdout[-6000:]}\n{mission.stderr[-3000:]}"
    namespace = _json(installed, "get", "namespace", DEMO_NS)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    phases = {
        f"{o['kind']}/{o['metadata']['name']}": (
            o["status"].get("phase"),
            (o["status"].get("conditions") or [{}])[-1].get("reason"),
        )
        for o in _json(installed, "get", "torchyard", "-n", DEMO_NS)["items"]
    }
    assert {ref: phase for ref, (phase, _) in phases.items()} == {
        "TrainingJob/digits-train": "Succeeded",
        "CompressionJob/digits-pruned": "Succeeded",
        "CompressionJob/minilm-int8": "Succeeded",
        "ModelVersion/digits-v1": "Serving",
        "ModelVersion/digits-v2": "RolledBack",
        "ModelVersion/digits-v3": "RolledBack",
        "ModelVersion/minilm-v1": "Serving",
    }, phases
    training = _json(installed, "get", "trainingjob", "digits-train", "-n", DEMO_NS)
    assert training["spec"]["parallelism"]["replicas"] == 2
    assert [r["phase"] for r in training["status"]["replicaStatuses"]] == ["Succeeded"] * 2
    v3 = _json(installed, "get", "modelversion", "digits-v3", "-n", DEMO_NS)
    said = [c["message"] for c in v3["status"]["conditions"] if c.get("reason") == "AnalysisFailed"]
    assert said and "error rate 100.00%" in said[0], v3["status"]

    # Every pod the mission ran (jobs, training replicas, servers, clients) is a
    # container that containerd started, under the restricted profile.
    pods = _json(installed, "get", "pods", "-n", DEMO_NS)["items"]
    assert len(pods) >= 6
    for pod in pods:
        for status in pod["status"].get("containerStatuses") or []:
            assert status["containerID"].startswith("containerd://"), status
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def _restricted_namespace(node: NodeCluster, name: str) -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }
    node.apply(namespace)


def test_a_worker_over_its_memory_limit_is_oomkilled_and_the_job_says_so(
    installed: NodeCluster,
) -> None:
    _restricted_namespace(installed, "oom")
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models", "namespace": "oom"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    job = yaml.safe_load((REPO / "manifests" / "samples" / "minilm-int8.yaml").read_text())
    job["metadata"] = {"name": "too-small", "namespace": "oom"}
    # Python with torch needs several times this much: the kernel kills it at the limit.
    job["spec"]["resources"] = {"requests": {"memory": "96Mi"}, "limits": {"memory": "96Mi"}}
    job["spec"]["backoffLimit"] = 0
    installed.apply(claim, job)
    installed.cp.kubectl(
        "wait", "cjob/too-small", "-n", "oom", "--for=condition=Failed", "--timeout=300s",
        timeout=360,
    )  # fmt: skip
    status = _json(installed, "get", "cjob", "too-small", "-n", "oom")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "OOMKilled", failed
    assert "exit code 137" in failed["message"], failed
    assert "memory limit of 96Mi" in failed["message"], failed


CONFINED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


@pytest.mark.parametrize(
    ("what", "context", "spec", "named"),
    [
        ("privileged", {"privileged": True}, {}, "privileged"),
        (
            "hostPath",
            CONFINED,
            {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
            "restricted volume types",
        ),
        ("hostNetwork", CONFINED, {"hostNetwork": True}, "host namespaces"),
    ],
)
def test_a_pod_reaching_for_the_host_is_refused_in_a_restricted_namespace(
    node: NodeCluster,
    what: str,
    context: dict[str, Any],
    spec: dict[str, Any],
    named: str,
) -> None:
    _restricted_namespace(node, "hostile")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": what.lower(), "namespace": "hostile"},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": "ghcr.io/torchyard/torchyard-worker:v0.1.0",
                    "securityContext": context,
                }
            ],
            **spec,
        },
    }
    refused = node.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert refused.returncode != 0, f"{what} pod was admitted"
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    assert named in refused.stderr, refused.stderr
