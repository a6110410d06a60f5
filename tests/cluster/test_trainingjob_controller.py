"""The TrainingJob controller against a real API server: pods, Service, gang restarts.

No node runs the pods here; where a test needs a pod to fail, it sets the pod's status
through the API as a kubelet would. The e2e tests run real training.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.cluster.kueue_webhook import kueue_pod_webhook
from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    install,
    running_operator,
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


def _fail_pod(session, name, exit_code):
    container = {
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
    session.patch_status("pod", name, {"phase": "Failed", "containerStatuses": [container]})


def test_replicas_and_headless_service_are_created(session, operator):
    session.apply(sample("TrainingJob"))
    pods = session.wait(
        "two replica pods",
        lambda: len(session.pods(SELECTOR)) == 2 and session.pods(SELECTOR),
    )
    service = session.get("service", "digits-train")
    assert service["spec"]["clusterIP"] == "None"
    by_name = {pod["metadata"]["name"]: pod for pod in pods}
    assert set(by_name) == {"digits-train-worker-0", "digits-train-worker-1"}
    env = {
        e["name"]: e["value"]
        for e in by_name["digits-train-worker-1"]["spec"]["containers"][0]["env"]
    }
    assert env["MASTER_ADDR"] == "digits-train-worker-0.digits-train"
    assert env["NODE_RANK"] == "1" and env["WORLD_SIZE"] == "2"
    job = session.get("tjob", "digits-train")
    assert job["status"]["phase"] == "Pending"
    assert [r["index"] for r in job["status"]["replicaStatuses"]] == [0, 1]


def test_a_failed_replica_restarts_the_gang_and_counts(session, operator):
    session.apply(sample("TrainingJob"))
    session.wait("two replica pods", lambda: len(session.pods(SELECTOR)) == 2)
    first_uids = {pod["metadata"]["uid"] for pod in session.pods(SELECTOR)}
    _fail_pod(session, "digits-train-worker-1", 137)

    def replaced():
        pods = session.pods(SELECTOR)
        uids = {pod["metadata"]["uid"] for pod in pods}
        return len(pods) == 2 and not uids & first_uids and pods

    pods = session.wait("both pods replaced", replaced, timeout=90)
    assert {pod["metadata"]["labels"]["torchyard.io/attempt"] for pod in pods} == {"1"}
    job = session.get("tjob", "digits-train")
    assert job["status"]["restarts"] == 1
    restarting = session.events("digits-train", "Restarting")
    assert "replica 1" in restarting[0]["message"]


def test_backoff_limit_exhausted_fails_the_job(session, operator):
    job = sample("TrainingJob")
    job["spec"]["backoffLimit"] = 0
    session.apply(job)
    session.wait("two replica pods", lambda: len(session.pods(SELECTOR)) == 2)
    _fail_pod(session, "digits-train-worker-0", 1)
    status = session.wait_for("tjob/digits-train", "Failed", timeout=60)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "killed by the test" in failed["message"]


def _suspend_and_resume(session, job):
    """spec.suspend removes the pods and keeps the job; false again recreates them."""
    job["spec"]["suspend"] = True
    session.apply(job)
    session.wait("pods removed", lambda: not session.pods(SELECTOR), timeout=90)
    assert session.get("tjob", "digits-train")["status"]["phase"] == "Suspended"
    job["spec"]["suspend"] = False
    session.apply(job)
    session.wait("pods recreated", lambda: len(session.pods(SELECTOR)) == 2)


def test_suspend_removes_pods_and_resume_recreates_them(session, operator):
    job = sample("TrainingJob")
    session.apply(job)
    session.wait("two replica pods", lambda: len(session.pods(SELECTOR)) == 2)
    _suspend_and_resume(session, job)


def test_delete_removes_pods_and_service(session, operator):
    session.apply(sample("TrainingJob"))
    session.wait("two replica pods", lambda: len(session.pods(SELECTOR)) == 2)
    session.kubectl("delete", "tjob", "digits-train")
    session.wait(
        "pods and Service garbage-collected",
        lambda: not session.pods(SELECTOR) and not session.objects("services"),
        timeout=90,
    )


def test_deadline_and_ttl_fire_on_time_without_any_event(session, operator):
    """Nothing changes after the pods are created (no node runs them): the deadline and
    then the TTL must come from the operator's own requeue, not from an event or the
    60-second resync."""
    job = sample("TrainingJob")
    job["spec"]["activeDeadlineSeconds"] = 3
    job["spec"]["ttlSecondsAfterFinished"] = 2
    session.apply(job)
    session.wait("two replica pods", lambda: len(session.pods(SELECTOR)) == 2)
    status = session.wait_for("tjob/digits-train", "Failed", timeout=30)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    took = _seconds(status["completionTime"]) - _seconds(status["startTime"])
    assert 3 <= took <= 5, f"failed {took:.0f} s after start; the deadline is 3 s"
    session.wait(
        "the finished job deleted by its TTL",
        lambda: not session.objects("tjob"),
        timeout=15,
    )


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


GPU_POOL = {
    "nodeSelector": {"torchyard.io/pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {
                            "matchLabels": {"torchyard.io/trainingjob": "digits-train"}
                        },
                    },
                }
            ]
        }
    },
    "priorityClassName": "torchyard-test-training",
}


def test_placement_and_shared_memory_reach_every_replica(session, operator):
    """What a tainted GPU pool needs, as the API server stores it on the pods."""
    session.cp.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": "torchyard-test-training"},
                "value": 1000,
            }
        ),
    )
    job = sample("TrainingJob")
    job["spec"].update(GPU_POOL, shmSize="2Gi")
    session.apply(job)
    pods = session.wait(
        "two replica pods", lambda: len(session.pods(SELECTOR)) == 2 and session.pods(SELECTOR)
    )
    for pod in pods:
        spec = pod["spec"]
        assert spec["nodeSelector"] == GPU_POOL["nodeSelector"]
        assert GPU_POOL["tolerations"][0] in spec["tolerations"]
        assert spec["affinity"] == GPU_POOL["affinity"]
        assert spec["priority"] == 1000  # resolved by the API server from the class
        shm = next(v for v in spec["volumes"] if v["name"] == "shm")
        assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
        mounts = spec["containers"][0]["volumeMounts"]
        assert {"name": "shm", "mountPath": "/dev/shm"} in mounts


def test_a_missing_priority_class_is_reported_naming_it(session, operator):
    job = sample("TrainingJob")
    job["spec"]["priorityClassName"] = "no-such-class"
    session.apply(job)

    def refused():
        status = session.get("tjob", "digits-train").get("status") or {}
        created = next((c for c in status.get("conditions", []) if c["type"] == "Created"), {})
        return created.get("reason") == "FailedCreate" and created

    created = session.wait("Created=False FailedCreate", refused, timeout=60)
    assert "no-such-class" in created["message"], created
    assert "Create the PriorityClass" in created["message"], created
    assert not session.pods(SELECTOR)


def test_a_queued_job_waits_for_kueue_to_admit_every_replica_together(session, operator):
    """Kueue's plain pod group contract: the replicas started together are one group,
    gated by Kueue's webhook at creation, and the job says it waits for the queue until
    Kueue lifts the gates. After a suspension the new replicas are a new group (Kueue
    keeps the old group's Workload a while), gated again."""
    job = sample("TrainingJob")
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a"}

    def gated_pods():
        pods = session.pods(SELECTOR)
        return len(pods) == 2 and all(p["spec"].get("schedulingGates") for p in pods) and pods

    def says(words):
        def check():
            status = session.get("tjob", "digits-train").get("status") or {}
            return words in (status.get("message") or "") and status

        return check

    with kueue_pod_webhook(session.cp):
        session.apply(job)
        pods = session.wait("two gated replicas", gated_pods)
        groups = {p["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] for p in pods}
        assert len(groups) == 1, groups
        for pod in pods:
            assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
            assert pod["metadata"]["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "2"
            assert pod["spec"]["schedulingGates"] == [{"name": "kueue.x-k8s.io/admission"}]
        waiting = session.wait("waiting for Kueue in status", says("waits for Kueue to admit"))
        assert waiting["phase"] == "Pending" and "'team-a'" in waiting["message"], waiting

        # Kueue admits the group: it lifts the gate of every pod at once.
        for pod in pods:
            session.kubectl(
                "patch",
                "pod",
                pod["metadata"]["name"],
                "--type=json",
                "-p",
                '[{"op": "remove", "path": "/spec/schedulingGates"}]',
            )
        session.wait("no longer waiting for Kueue", lambda: "Kueue" not in says("")()["message"])

        _suspend_and_resume(session, job)
        resumed = session.wait("two gated replicas again", gated_pods)
        again = {p["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] for p in resumed}
        assert len(again) == 1 and again != groups, (groups, again)
        session.wait("waiting for Kueue again", says("waits for Kueue to admit"))
