"""The CompressionJob controller against a real API server and controller-manager.

There is no node here, so pods never run (the e2e tests run them); what is checked is
what the operator creates, how it reports a job that cannot start, and clean-up.
"""

from __future__ import annotations

import pytest
import yaml

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    get,
    install,
    running_operator,
    wait_until,
)
from tests.objects import sample


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory):
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(control_plane, kubeconfig, log):
        yield log


def test_child_job_is_created_owned_labelled_and_restricted(control_plane, namespace, operator):
    control_plane.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    job = sample("CompressionJob")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))
    child = wait_until(
        "the child Job",
        lambda: get(control_plane, "jobs", "-n", namespace)["items"],
    )[0]
    owner = get(control_plane, "cjob", "minilm-int8", "-n", namespace)
    (reference,) = child["metadata"]["ownerReferences"]
    assert reference["uid"] == owner["metadata"]["uid"]
    assert reference["controller"] is True
    assert child["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "torchyard",
        "torchyard.io/compressionjob": "minilm-int8",
    }
    # The controller-manager creates the pod: it passed the restricted admission.
    wait_until(
        "the compression pod",
        lambda: get(
            control_plane, "pods", "-n", namespace, "-l", "torchyard.io/compressionjob=minilm-int8"
        )["items"],
    )


def test_job_that_cannot_start_says_why(control_plane, namespace, operator):
    job = sample("CompressionJob")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))

    def says_why():
        status = get(control_plane, "cjob", "minilm-int8", "-n", namespace).get("status", {})
        running = [c for c in status.get("conditions", []) if c["type"] == "Running"]
        return running and "not scheduled" in running[0]["message"] and running[0]

    condition = wait_until("a Running=False condition saying why", says_why)
    assert condition["status"] == "False"
    status = get(control_plane, "cjob", "minilm-int8", "-n", namespace)["status"]
    assert status["phase"] == "Pending"
    events = get(
        control_plane, "events", "-n", namespace, "--field-selector=involvedObject.name=minilm-int8"
    )["items"]
    assert {"Accepted", "JobCreated"} <= {event["reason"] for event in events}


def test_deleting_the_compression_job_removes_its_job_and_pods(control_plane, namespace, operator):
    job = sample("CompressionJob")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(job))
    wait_until("the child Job", lambda: get(control_plane, "jobs", "-n", namespace)["items"])
    control_plane.kubectl("delete", "cjob", "minilm-int8", "-n", namespace, "--wait=true")
    wait_until(
        "garbage collection of the Job and its pods",
        lambda: (
            not get(control_plane, "jobs", "-n", namespace)["items"]
            and not get(control_plane, "pods", "-n", namespace)["items"]
        ),
        timeout=90,
    )


def _pruning_of(model_uri: str) -> dict:
    job = sample("CompressionJob")
    job["metadata"]["name"] = "digits-pruned"
    del job["spec"]["quantize"]
    job["spec"].update(
        model={"uri": model_uri, "format": "torchyard"},
        method="prune",
        prune={"kind": "structured", "sparsity": 0.5},
        output={"uri": "pvc://models/digits/v2"},
    )
    return job


def _condition(obj: dict, kind: str) -> dict:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )


def test_a_job_waits_for_the_job_that_writes_its_model_and_fails_with_it(
    control_plane, namespace, operator
):
    """The consumer waits (no Job created) while the producer runs, and fails naming why
    once the producer has failed. (Applied in the same instant, the consumer may start
    before the producer is seen; its pod then finds no model and it goes back to
    waiting: the e2e samples test and the planner's unit tests cover that path.)"""
    control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(sample("TrainingJob"))
    )
    wait_until(
        "the producer accepted",
        lambda: get(control_plane, "tjob", "digits-train", "-n", namespace).get("status"),
    )
    consumer = _pruning_of("pvc://models/digits/v1")  # the producer's output
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(consumer))
    waiting = wait_until(
        "the consumer waiting for its input",
        lambda: (
            (job := get(control_plane, "cjob", "digits-pruned", "-n", namespace))
            and _condition(job, "Created").get("reason") == "WaitingForInput"
            and job
        ),
    )
    assert "TrainingJob/digits-train" in _condition(waiting, "Created")["message"]
    assert waiting["status"]["input"]["producedBy"] == "TrainingJob/digits-train"
    assert not get(control_plane, "jobs", "-n", namespace)["items"]

    # The producer fails (as its pods would make it; no node runs them here).
    control_plane.kubectl(
        "patch", "tjob", "digits-train", "-n", namespace, "--subresource=status",
        "--type=merge", "-p",
        '{"status":{"phase":"Failed","message":"replica 1 failed with exit code 137"}}',
    )  # fmt: skip
    failed = wait_until(
        "the consumer failing with its producer",
        lambda: (
            (job := get(control_plane, "cjob", "digits-pruned", "-n", namespace))
            and job["status"].get("phase") == "Failed"
            and job
        ),
    )
    reason = _condition(failed, "Failed")
    assert reason["reason"] == "InputFailed"
    assert "exit code 137" in reason["message"]
    assert not get(control_plane, "jobs", "-n", namespace)["items"]
