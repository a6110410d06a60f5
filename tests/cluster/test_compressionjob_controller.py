"""The CompressionJob controller against a real API server and controller-manager.

There is no node here, so pods never run (the e2e tests run them); what is checked is
what the operator creates, how it reports a job that cannot start, and clean-up.
"""

from __future__ import annotations

import pytest

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    install,
    running_operator,
)
from tests.objects import sample


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory):
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(control_plane, kubeconfig, log):
        yield log


def test_child_job_is_created_owned_labelled_and_restricted(session, operator):
    session.cp.kubectl(
        "label", "namespace", session.namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    session.apply(sample("CompressionJob"))
    child = session.wait("the child Job", lambda: session.objects("jobs"))[0]
    owner = session.get("cjob", "minilm-int8")
    (reference,) = child["metadata"]["ownerReferences"]
    assert reference["uid"] == owner["metadata"]["uid"]
    assert reference["controller"] is True
    assert child["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "torchyard",
        "torchyard.io/compressionjob": "minilm-int8",
    }
    # The controller-manager creates the pod: it passed the restricted admission.
    session.wait(
        "the compression pod", lambda: session.pods("torchyard.io/compressionjob=minilm-int8")
    )


def test_job_that_cannot_start_says_why(session, operator):
    session.apply(sample("CompressionJob"))

    def says_why():
        status = session.get("cjob", "minilm-int8").get("status", {})
        running = [c for c in status.get("conditions", []) if c["type"] == "Running"]
        return running and "not scheduled" in running[0]["message"] and running[0]

    condition = session.wait("a Running=False condition saying why", says_why)
    assert condition["status"] == "False"
    status = session.get("cjob", "minilm-int8")["status"]
    assert status["phase"] == "Pending"
    events = session.objects("events", "--field-selector=involvedObject.name=minilm-int8")
    assert {"Accepted", "JobCreated"} <= {event["reason"] for event in events}


def test_deleting_the_compression_job_removes_its_job_and_pods(session, operator):
    session.apply(sample("CompressionJob"))
    session.wait("the child Job", lambda: session.objects("jobs"))
    session.kubectl("delete", "cjob", "minilm-int8", "--wait=true")
    session.wait(
        "garbage collection of the Job and its pods",
        lambda: not session.objects("jobs") and not session.objects("pods"),
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


def test_a_job_waits_for_the_job_that_writes_its_model_and_fails_with_it(session, operator):
    """The consumer waits (no Job created) while the producer runs, and fails naming why
    once the producer has failed. (Applied in the same instant, the consumer may start
    before the producer is seen; its pod then finds no model and it goes back to
    waiting: the e2e samples test and the planner's unit tests cover that path.)"""
    session.apply(sample("TrainingJob"))
    session.wait("the producer accepted", lambda: session.get("tjob", "digits-train").get("status"))
    session.apply(_pruning_of("pvc://models/digits/v1"))  # the producer's output
    waiting = session.wait(
        "the consumer waiting for its input",
        lambda: (
            (job := session.get("cjob", "digits-pruned"))
            and _condition(job, "Created").get("reason") == "WaitingForInput"
            and job
        ),
    )
    assert "TrainingJob/digits-train" in _condition(waiting, "Created")["message"]
    assert waiting["status"]["input"]["producedBy"] == "TrainingJob/digits-train"
    assert not session.objects("jobs")

    # The producer fails (as its pods would make it; no node runs them here).
    failing = {"phase": "Failed", "message": "replica 1 failed with exit code 137"}
    session.patch_status("tjob", "digits-train", failing)
    failed = session.wait(
        "the consumer failing with its producer",
        lambda: (
            (job := session.get("cjob", "digits-pruned"))
            and job["status"].get("phase") == "Failed"
            and job
        ),
    )
    reason = _condition(failed, "Failed")
    assert reason["reason"] == "InputFailed"
    assert "exit code 137" in reason["message"]
    assert not session.objects("jobs")
