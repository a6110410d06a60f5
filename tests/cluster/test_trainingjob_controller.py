"""The TrainingJob controller against a real API server: pods, Service, gang restarts.

No node runs the pods here; where a test needs a pod to fail, it sets the pod's status
through the API as a kubelet would. The e2e tests run real training.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import yaml

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    events,
    get,
    install,
    running_operator,
    wait_until,
)
from tests.objects import sample

SELECTOR = "torchyard.io/trainingjob=digits-train"


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory):
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(control_plane, kubeconfig, log):
        yield log


def _apply(control_plane, namespace, job):
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))


def _pods(control_plane, namespace):
    return get(control_plane, "pods", "-n", namespace, "-l", SELECTOR)["items"]


def _fail_pod(control_plane, namespace, name, exit_code):
    status = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "worker",
                    "image": "x",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": "Error",
                            "message": "killed by the test",
                        }
                    },
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
        yaml.safe_dump(status),
    )


def test_replicas_and_headless_service_are_created(control_plane, namespace, operator):
    _apply(control_plane, namespace, sample("TrainingJob"))
    pods = wait_until(
        "two replica pods",
        lambda: len(_pods(control_plane, namespace)) == 2 and _pods(control_plane, namespace),
    )
    service = get(control_plane, "service", "digits-train", "-n", namespace)
    assert service["spec"]["clusterIP"] == "None"
    by_name = {pod["metadata"]["name"]: pod for pod in pods}
    assert set(by_name) == {"digits-train-worker-0", "digits-train-worker-1"}
    env = {
        e["name"]: e["value"]
        for e in by_name["digits-train-worker-1"]["spec"]["containers"][0]["env"]
    }
    assert env["MASTER_ADDR"] == "digits-train-worker-0.digits-train"
    assert env["NODE_RANK"] == "1" and env["WORLD_SIZE"] == "2"
    job = get(control_plane, "tjob", "digits-train", "-n", namespace)
    assert job["status"]["phase"] == "Pending"
    assert [r["index"] for r in job["status"]["replicaStatuses"]] == [0, 1]


def test_a_failed_replica_restarts_the_gang_and_counts(control_plane, namespace, operator):
    _apply(control_plane, namespace, sample("TrainingJob"))
    wait_until("two replica pods", lambda: len(_pods(control_plane, namespace)) == 2)
    first_uids = {pod["metadata"]["uid"] for pod in _pods(control_plane, namespace)}
    _fail_pod(control_plane, namespace, "digits-train-worker-1", 137)

    def replaced():
        pods = _pods(control_plane, namespace)
        uids = {pod["metadata"]["uid"] for pod in pods}
        return len(pods) == 2 and not uids & first_uids and pods

    pods = wait_until("both pods replaced", replaced, timeout=90)
    assert {pod["metadata"]["labels"]["torchyard.io/attempt"] for pod in pods} == {"1"}
    job = get(control_plane, "tjob", "digits-train", "-n", namespace)
    assert job["status"]["restarts"] == 1
    restarting = events(control_plane, namespace, "digits-train", "Restarting")
    assert "replica 1" in restarting[0]["message"]


def test_backoff_limit_exhausted_fails_the_job(control_plane, namespace, operator):
    job = sample("TrainingJob")
    job["spec"]["backoffLimit"] = 0
    _apply(control_plane, namespace, job)
    wait_until("two replica pods", lambda: len(_pods(control_plane, namespace)) == 2)
    _fail_pod(control_plane, namespace, "digits-train-worker-0", 1)
    control_plane.kubectl(
        "wait", "tjob/digits-train", "-n", namespace, "--for=condition=Failed", "--timeout=60s"
    )
    status = get(control_plane, "tjob", "digits-train", "-n", namespace)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "killed by the test" in failed["message"]


def test_suspend_removes_pods_and_resume_recreates_them(control_plane, namespace, operator):
    job = sample("TrainingJob")
    _apply(control_plane, namespace, job)
    wait_until("two replica pods", lambda: len(_pods(control_plane, namespace)) == 2)
    job["spec"]["suspend"] = True
    _apply(control_plane, namespace, job)
    wait_until("pods removed", lambda: not _pods(control_plane, namespace), timeout=90)
    assert get(control_plane, "tjob", "digits-train", "-n", namespace)["status"]["phase"] == (
        "Suspended"
    )
    job["spec"]["suspend"] = False
    _apply(control_plane, namespace, job)
    wait_until("pods recreated", lambda: len(_pods(control_plane, namespace)) == 2)


def test_delete_removes_pods_and_service(control_plane, namespace, operator):
    _apply(control_plane, namespace, sample("TrainingJob"))
    wait_until("two replica pods", lambda: len(_pods(control_plane, namespace)) == 2)
    control_plane.kubectl("delete", "tjob", "digits-train", "-n", namespace)
    wait_until(
        "pods and Service garbage-collected",
        lambda: (
            not _pods(control_plane, namespace)
            and not get(control_plane, "services", "-n", namespace)["items"]
        ),
        timeout=90,
    )


def test_deadline_and_ttl_fire_on_time_without_any_event(control_plane, namespace, operator):
    """Nothing changes after the pods are created (no node runs them): the deadline and
    then the TTL must come from the operator's own requeue, not from an event or the
    60-second resync."""
    job = sample("TrainingJob")
    job["spec"]["activeDeadlineSeconds"] = 3
    job["spec"]["ttlSecondsAfterFinished"] = 2
    _apply(control_plane, namespace, job)
    wait_until("two replica pods", lambda: len(_pods(control_plane, namespace)) == 2)
    control_plane.kubectl(
        "wait", "tjob/digits-train", "-n", namespace, "--for=condition=Failed", "--timeout=30s"
    )
    status = get(control_plane, "tjob", "digits-train", "-n", namespace)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    took = _seconds(status["completionTime"]) - _seconds(status["startTime"])
    assert 3 <= took <= 5, f"failed {took:.0f} s after start; the deadline is 3 s"
    wait_until(
        "the finished job deleted by its TTL",
        lambda: not get(control_plane, "tjob", "-n", namespace)["items"],
        timeout=15,
    )


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
