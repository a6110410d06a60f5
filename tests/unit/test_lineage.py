"""Jobs chained through artifacts: a job waits for the job that writes its model, fails
with it, or reads exactly what it wrote (pure decisions)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from tests.builders import PodBuilder, batch_job, pod, training_job
from tests.objects import sample
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.modelversion import RegisterAs
from torchyard.api.training import TrainingJobSpec
from torchyard.conditions import find_condition
from torchyard.plans.compression import CompressionObserved
from torchyard.plans.compression import plan as compression_plan
from torchyard.plans.lineage import Producer, find_producer, gate, output_uri, producer
from torchyard.plans.training import TrainingObserved
from torchyard.plans.training import plan as training_plan
from torchyard.resources.compression import compression_job
from torchyard.resources.registration import model_version
from torchyard.resources.training import training_pod
from torchyard.validation import parse_spec

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64
TRAINED = "pvc://models/digits/v1"


def _pruning(**changes) -> CompressionJobSpec:
    spec = sample("CompressionJob")["spec"] | {
        "model": {"uri": TRAINED, "format": "torchyard"},
        "method": "prune",
        "prune": {"kind": "structured", "sparsity": 0.5},
        "output": {"uri": "pvc://models/digits/v2"},
    }
    spec.pop("quantize")
    return parse_spec(CompressionJobSpec, spec | changes)


def _observe_compression(**changes) -> CompressionObserved:
    """The pruning job, new (no child Job yet) and seen at NOW; each test names what it
    changes."""
    new = CompressionObserved("digits-pruned", _pruning(), {}, 1, None, [], NOW)
    return replace(new, **changes)


def _trainer(phase: str | None, digest: str | None = None, message: str | None = None):
    return Producer("TrainingJob", "digits-train", phase, digest, message)


def _failed_permanently(replica: PodBuilder, reason: str) -> dict:
    """The pod, its worker exited with the permanent code saying `reason`."""
    said = json.dumps({"reason": reason, "message": "not there"})
    return replica.phase("Failed").terminated(3, message=said).obj()


def _failed_job(reason: str):
    failed = batch_job("digits-pruned-compress", "ns").condition("Failed", reason).obj()
    model_not_found = pod("p", "ns").created("2026-11-28T11:59:00Z")
    return failed, [_failed_permanently(model_not_found, "ModelNotFound")]


def test_a_job_whose_model_another_job_writes_waits_for_it():
    decided = compression_plan(_observe_compression(producer=_trainer("Running")))
    assert not decided.create_job
    assert decided.status_patch["phase"] == "Pending"
    created = find_condition(decided.status_patch["conditions"], "Created")
    assert created["status"] == "False" and created["reason"] == "WaitingForInput"
    assert "TrainingJob/digits-train" in created["message"]
    assert decided.status_patch["input"]["producedBy"] == "TrainingJob/digits-train"
    assert [e.reason for e in decided.events] == ["WaitingForInput"]
    assert decided.requeue_after is not None  # it looks again by itself


def test_it_starts_pinned_to_the_digest_its_producer_reported():
    decided = compression_plan(_observe_compression(producer=_trainer("Succeeded", DIGEST)))
    assert decided.create_job and decided.model_digest == DIGEST
    assert decided.status_patch["input"] == {
        "uri": TRAINED,
        "digest": DIGEST,
        "producedBy": "TrainingJob/digits-train",
    }


def test_a_digest_in_the_spec_wins_over_the_producers():
    mine = "sha256:" + "c" * 64
    spec = _pruning(model={"uri": TRAINED, "format": "torchyard", "digest": mine})
    decided = compression_plan(
        _observe_compression(spec=spec, producer=_trainer("Succeeded", DIGEST))
    )
    assert decided.model_digest == mine


def test_a_failed_producer_fails_the_job_at_once_saying_why():
    producer_failed = _trainer("Failed", message="replica 1 failed with exit code 137")
    decided = compression_plan(_observe_compression(producer=producer_failed))
    assert decided.status_patch["phase"] == "Failed"
    failed = find_condition(decided.status_patch["conditions"], "Failed")
    assert failed["reason"] == "InputFailed"
    assert "exit code 137" in failed["message"] and "TrainingJob/digits-train" in failed["message"]


def test_a_job_that_started_before_its_producer_was_seen_waits_and_runs_again():
    job, pods = _failed_job("PodFailurePolicy")
    decided = compression_plan(
        _observe_compression(
            status={"phase": "Running"}, job=job, pods=pods, producer=_trainer("Running")
        )
    )
    assert decided.delete_job
    assert decided.status_patch["phase"] == "Pending"
    assert find_condition(decided.status_patch["conditions"], "Created")["reason"] == (
        "WaitingForInput"
    )


def test_a_missing_model_nobody_writes_still_fails_at_once():
    job, pods = _failed_job("PodFailurePolicy")
    decided = compression_plan(
        _observe_compression(status={"phase": "Running"}, job=job, pods=pods, producer=None)
    )
    assert not decided.delete_job
    assert decided.status_patch["phase"] == "Failed"
    assert find_condition(decided.status_patch["conditions"], "Failed")["reason"] == "ModelNotFound"


def test_the_child_job_reads_the_pinned_digest():
    spec = _pruning()
    pinned = spec.model_copy(update={"model": spec.model.model_copy(update={"digest": DIGEST})})
    env = compression_job("digits-pruned", "ns", pinned)["spec"]["template"]["spec"]
    passed = json.loads(
        next(e["value"] for e in env["containers"][0]["env"] if e["name"] == "TORCHYARD_SPEC")
    )
    assert passed["model"]["digest"] == DIGEST


def _training(**changes) -> TrainingJobSpec:
    return parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"] | changes)


def _observe_training(**changes) -> TrainingObserved:
    """A new TrainingJob (no Service, no pods yet) seen at NOW; each test names what it
    changes."""
    new = TrainingObserved("fine-tune", _training(), {}, 1, [], False, NOW)
    return replace(new, **changes)


def test_a_training_job_from_scratch_names_its_factory_as_input():
    decided = training_plan(_observe_training(name="digits-train"))
    assert decided.create_replicas == [0, 1]
    assert decided.status_patch["input"] == {"factory": "torchyard.workloads.models:mlp"}


def test_a_training_job_waits_for_the_job_that_writes_its_starting_model():
    spec = _training(model={"uri": "pvc://models/digits/v2", "format": "torchyard"})
    producing = Producer("CompressionJob", "digits-pruned", "Running", None, None)
    decided = training_plan(_observe_training(spec=spec, producer=producing))
    assert not decided.create_replicas and not decided.create_service
    assert decided.status_patch["phase"] == "Pending"
    assert "CompressionJob/digits-pruned" in decided.status_patch["message"]


def test_a_training_replica_that_found_no_model_yet_waits_instead_of_failing():
    spec = _training(model={"uri": "pvc://models/digits/v2", "format": "torchyard"})
    pods = []
    for replica in (0, 1):
        created = PodBuilder.wrap(training_pod("fine-tune", "ns", spec, replica, 0))
        pods.append(_failed_permanently(created, "ModelUnavailable"))
    producing = Producer("CompressionJob", "digits-pruned", "Running", None, None)
    status = {"phase": "Running", "startTime": "2026-11-28T11:59:00Z"}
    decided = training_plan(
        _observe_training(
            spec=spec, status=status, pods=pods, service_exists=True, producer=producing
        )
    )
    assert decided.status_patch["phase"] == "Pending"
    assert decided.status_patch["startTime"] is None  # the gate is looked at again
    assert sorted(decided.delete_pods) == ["fine-tune-worker-0", "fine-tune-worker-1"]
    assert "restarts" not in decided.status_patch  # waiting is not a restart


def test_producers_are_found_by_normalised_output_uri_and_never_the_job_itself():
    body = (
        training_job("digits-train", "ns")
        .spec(output={"uri": "pvc://models/./digits/v1/"})
        .phase("Succeeded")
        .status(result={"uri": TRAINED, "digest": DIGEST})
        .obj()
    )
    assert output_uri(body) == TRAINED
    found = producer("TrainingJob", body)
    assert found.digest == DIGEST and found.ref == "TrainingJob/digits-train"
    assert find_producer(TRAINED, ("TrainingJob", "digits-train"), [found]) is None
    assert find_producer(TRAINED, ("CompressionJob", "x"), [found]) == found


def test_a_running_producer_is_waited_for_even_beside_a_finished_one():
    done = _trainer("Succeeded", DIGEST)
    rerun = Producer("TrainingJob", "digits-train-2", "Running", None, None)
    assert find_producer(TRAINED, ("CompressionJob", "x"), [done, rerun]) == rerun
    assert gate(_pruning().model, rerun).waiting is not None


def test_a_registered_version_carries_the_serving_and_rollout_asked_for():
    register = RegisterAs.model_validate(
        {
            "model": "digits",
            "version": "2",
            "serving": {"replicas": 2},
            "rollout": {"steps": [{"setWeight": 50}, {"pause": {"durationSeconds": 20}}]},
        }
    )
    artifact = {"uri": "pvc://models/digits/v2", "digest": DIGEST, "format": "torchyard"}
    version = model_version(register, artifact, "ns", "compressionjob.digits-pruned")
    assert version["metadata"]["name"] == "digits-v2"
    assert version["spec"]["serving"]["replicas"] == 2
    assert version["spec"]["rollout"]["steps"][0] == {"setWeight": 50}
    assert version["spec"]["artifact"]["digest"] == DIGEST
