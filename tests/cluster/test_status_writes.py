"""Status writes against the real API server: how many a job makes from create to
Succeeded (one per phase it is seen in, torchyard.controllers.jobs), and that an object
deleted (with its namespace, say) while it was reconciled ends the reconcile quietly,
with no error and no traceback in the operator's log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.torchyard import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Session,
    api_requests,
    install,
    running_operator,
)
from tests.objects import sample
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.controllers import client, reconciler


@pytest.fixture
def operator_client(control_plane, monkeypatch) -> Iterator[None]:
    """The operator's API client, on the admin kubeconfig, fresh for each test."""
    install(control_plane)
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    monkeypatch.setattr(client, "_client", None)
    yield
    monkeypatch.setattr(client, "_client", None)


def _stored_then_deleted(session: Session) -> dict:
    job = sample("CompressionJob")
    session.apply(job)
    stored = session.get("cjob", job["metadata"]["name"])
    session.kubectl("delete", "cjob", job["metadata"]["name"])
    return stored


def test_a_status_write_to_a_deleted_object_says_it_is_gone(session, operator_client):
    stored = _stored_then_deleted(session)
    name, version = stored["metadata"]["name"], stored["metadata"]["resourceVersion"]

    async def write_both() -> list[dict | None]:
        # With the resourceVersion the controller read, and without one.
        return [
            await client.patch_status(
                COMPRESSION_JOB, session.namespace, name, {"phase": "Running"}, resource_version
            )
            for resource_version in (version, None)
        ]

    assert asyncio.run(write_both()) == [None, None]


def test_finishing_the_reconcile_of_a_deleted_object_ends_quietly(session, operator_client):
    stored = _stored_then_deleted(session)
    admitted = reconciler.Admitted(stored, {}, {"phase": "Pending"}, [], True)
    # No Stale (which would reconcile again), no ApiError (a traceback in the log).
    assert asyncio.run(reconciler.finish(COMPRESSION_JOB, admitted)) is None


@pytest.fixture(scope="module")
def operator(control_plane, tmp_path_factory) -> Iterator[Path]:
    install(control_plane)
    kubeconfig = control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(control_plane, kubeconfig, log):
        yield log


def _container(state: dict) -> dict:
    return {"name": "worker", "image": "x", "imageID": "", "ready": False, "restartCount": 0} | {
        "state": state
    }


RESULT = {
    "steps": 120,
    "finalLoss": 0.1234,
    "artifact": {"uri": "pvc://models/digits/v1", "digest": "sha256:" + "a" * 64},
}
RUNNING = {"phase": "Running", "containerStatuses": [_container({"running": {}})]}
SUCCEEDED = {
    "phase": "Succeeded",
    "containerStatuses": [
        _container({"terminated": {"exitCode": 0, "message": json.dumps(RESULT)}})
    ],
}
REPLICAS = ("digits-train-worker-0", "digits-train-worker-1")


def _status_writes(control_plane) -> int:
    counts = api_requests(control_plane, {"trainingjobs"})
    return sum(
        n
        for (resource, verb, _), n in counts.items()
        if resource == "trainingjobs/status" and verb in ("PATCH", "PUT")
    )


def _replicas_become(session: Session, status: dict, phase: str) -> None:
    """The replicas reach `status` one after the other, as a gang does (as their kubelet
    would write it: no node runs the pods here); until the job says `phase`, and a moment
    more for a write that would come late."""
    for pod in REPLICAS:
        session.patch_status("pod", pod, status)
        time.sleep(1)

    def says() -> bool:
        job = session.get("tjob", "digits-train")
        return job.get("status", {}).get("phase") == phase

    session.wait(f"the job {phase}", says)
    time.sleep(2)


def test_a_training_job_writes_its_status_once_per_phase_it_is_seen_in(session, operator):
    """Pending (admission, the pods created), Running, Succeeded (with its result and
    registration): one write each, not one per replica or per change of wording."""
    before = _status_writes(session.cp)
    session.apply(sample("TrainingJob"))
    pods = "torchyard.io/trainingjob=digits-train"
    session.wait("two replica pods", lambda: len(session.pods(pods)) == 2)
    time.sleep(2)
    assert _status_writes(session.cp) - before == 1
    _replicas_become(session, RUNNING, "Running")
    assert _status_writes(session.cp) - before == 2  # as Kubeflow's: Created, Running
    _replicas_become(session, SUCCEEDED, "Succeeded")
    assert _status_writes(session.cp) - before == 3
    status = session.get("tjob", "digits-train")["status"]
    assert status["message"] == "trained 120 steps, final loss 0.1234, artifact sha256:aaaaaaaaaaaa"
    assert [r["phase"] for r in status["replicaStatuses"]] == ["Succeeded", "Succeeded"]
    assert status["result"] == RESULT["artifact"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Accepted": ("True", "SpecValid"),
        "Created": ("True", "PodsCreated"),
        "Running": ("False", "Succeeded"),
        "Succeeded": ("True", "Trained"),
        "Registered": ("True", "Registered"),
    }
