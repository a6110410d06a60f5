"""Kueue's conventions on torchyard's children: the queue a job names reaches what
Kueue admits, one pod group per training attempt, and status says when Kueue holds a job."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from tests.builders import batch_job, pod
from tests.objects import sample
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.training import TrainingJobSpec
from torchyard.conditions import find_condition
from torchyard.controllers.objects import compact
from torchyard.plans.compression import CompressionObserved, plan
from torchyard.podstatus import pending_message
from torchyard.resources.compression import compression_job
from torchyard.resources.training import training_pod
from torchyard.validation import parse_spec

QUEUED = {"kueue.x-k8s.io/queue-name": "team-a", "kueue.x-k8s.io/priority-class": "low"}
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _training() -> TrainingJobSpec:
    return parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"])


def test_each_training_attempt_is_one_pod_group_of_all_replicas():
    spec = _training()
    first = [training_pod("digits", "ns", spec, r, 0, "uid", QUEUED) for r in (0, 1)]
    retried = training_pod("digits", "ns", spec, 0, 1, "uid", QUEUED)
    for replica in first:
        labels, annotations = replica["metadata"]["labels"], replica["metadata"]["annotations"]
        assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
        assert labels["kueue.x-k8s.io/priority-class"] == "low"
        assert labels["kueue.x-k8s.io/pod-group-name"] == "digits-attempt-0"
        assert annotations["kueue.x-k8s.io/pod-group-total-count"] == "2"
        # A failed replica ends its group: the gang restart is a new group, admitted anew.
        assert annotations["kueue.x-k8s.io/retriable-in-group"] == "false"
    assert retried["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] == "digits-attempt-1"


def test_the_longest_job_name_still_makes_a_valid_group_label():
    name = "a" * 50  # the longest TrainingJob name
    labels = training_pod(name, "ns", _training(), 0, 100, "uid", QUEUED)["metadata"]["labels"]
    assert len(labels["kueue.x-k8s.io/pod-group-name"]) <= 63


def test_without_a_queue_nothing_of_kueue_is_added():
    replica = training_pod("digits", "ns", _training(), 0, 0, "uid", {"team": "a"})
    assert not [key for key in replica["metadata"]["labels"] if key.startswith("kueue")]
    assert "annotations" not in replica["metadata"]
    assert "team" not in replica["metadata"]["labels"]


def test_a_compression_job_queues_its_child_job_which_kueue_manages():
    spec = parse_spec(CompressionJobSpec, sample("CompressionJob")["spec"])
    job = compression_job("minilm", "ns", spec, "uid", QUEUED)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "low"
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]


def test_the_reconciles_copy_of_a_job_keeps_its_queue():
    body = {"metadata": {"name": "j", "labels": {**QUEUED, "team": "a"}}, "spec": {}}
    assert compact(body)["metadata"]["labels"] == QUEUED
    assert "labels" not in compact({"metadata": {"name": "j", "labels": {"team": "a"}}})["metadata"]


def test_a_replica_held_by_kueue_says_so_and_names_the_queue():
    gated = (
        pod("digits-worker-0")
        .labels(QUEUED)
        .spec(schedulingGates=[{"name": "kueue.x-k8s.io/admission"}])
        .phase("Pending")
        .condition("PodScheduled", "SchedulingGated", "blocked by gates", status="False")
    )
    message = pending_message([gated.obj()], False)
    assert "waits for Kueue to admit the job from queue 'team-a'" in message
    other = pod("x").spec(schedulingGates=[{"name": "example.com/quota"}]).obj()
    assert (
        pending_message([other], False) == "pod x waits for its scheduling gates: example.com/quota"
    )


def test_a_compression_job_kueue_has_not_admitted_says_it_waits_for_the_queue():
    spec = parse_spec(CompressionJobSpec, sample("CompressionJob")["spec"])
    held = batch_job("minilm-compress").labels(QUEUED).spec(suspend=True).obj()
    observed = CompressionObserved("minilm", spec, {}, 1, None, [], NOW)
    decided = plan(replace(observed, job=held))
    running = find_condition(decided.status_patch["conditions"], "Running")
    assert decided.status_patch["phase"] == "Pending"
    assert "waits for Kueue to admit it from queue 'team-a'" in running["message"]
