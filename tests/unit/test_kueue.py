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
from torchyard.controllers.children import owned_entry
from torchyard.controllers.objects import compact
from torchyard.plans.compression import CompressionObserved, plan
from torchyard.podstatus import pending_message
from torchyard.resources.compression import compression_job
from torchyard.resources.kueue import group_name, pod_group
from torchyard.resources.training import training_pod
from torchyard.validation import parse_spec

QUEUED = {"kueue.x-k8s.io/queue-name": "team-a", "kueue.x-k8s.io/priority-class": "low"}
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _training() -> TrainingJobSpec:
    return parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"])


def _replicas(job, attempt, existing=(), labels=QUEUED):
    spec = _training()
    group = pod_group(labels, group_name(job, existing), spec.parallelism.replicas)
    return [training_pod(job, "ns", spec, r, attempt, "uid", group) for r in (0, 1)]


def test_the_replicas_started_together_are_one_pod_group():
    first = _replicas("digits", 0)
    names = {replica["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] for replica in first}
    assert len(names) == 1 and names.pop().startswith("digits-")
    for replica in first:
        labels, annotations = replica["metadata"]["labels"], replica["metadata"]["annotations"]
        assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
        assert labels["kueue.x-k8s.io/priority-class"] == "low"
        assert annotations["kueue.x-k8s.io/pod-group-total-count"] == "2"
        # A failed replica ends its group: the gang restart is a new group, admitted anew.
        assert annotations["kueue.x-k8s.io/retriable-in-group"] == "false"


def test_a_group_name_is_never_reused_but_a_recreated_replica_joins_its_group():
    """Kueue keeps a finished group's Workload a while: new pods under an old name (after
    a suspension, a gang restart, or the job deleted and applied again) would join it and
    never be admitted."""
    first = _replicas("digits", 0)
    again = _replicas("digits", 0)  # resumed after a suspension: same attempt, new pods
    group = first[0]["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"]
    assert again[0]["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] != group
    rejoined = _replicas("digits", 0, existing=[first[1]])
    assert rejoined[0]["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] == group


def test_the_longest_job_name_still_makes_a_valid_group_label():
    (replica, _) = _replicas("a" * 50, 100)  # the longest TrainingJob name
    assert len(replica["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"]) <= 63


def test_without_a_queue_nothing_of_kueue_is_added():
    (replica, _) = _replicas("digits", 0, labels={"team": "a"})
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
    labels = {**QUEUED, "team": "a"}
    body = {"kind": "TrainingJob", "metadata": {"name": "j", "labels": labels}, "spec": {}}
    assert compact(body)["metadata"]["labels"] == QUEUED
    other = {**body, "metadata": {"name": "j", "labels": {"team": "a"}}}
    assert "labels" not in compact(other)["metadata"]
    # A ModelVersion is not queued: its serving Deployment must not get the queue label.
    version = {**body, "kind": "ModelVersion"}
    assert "labels" not in compact(version)["metadata"]


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


def snapshot_of(child):
    child = {**child, "metadata": {**child["metadata"], "uid": "c", "namespace": "ns"}}
    child["metadata"]["ownerReferences"] = [
        {"kind": "CompressionJob", "uid": "owner", "controller": True, "name": "minilm"}
    ]
    return list(owned_entry("CompressionJob", "ns", child).values())


def test_a_compression_job_kueue_has_not_admitted_says_it_waits_for_the_queue():
    spec = parse_spec(CompressionJobSpec, sample("CompressionJob")["spec"])
    held = batch_job("minilm-compress").labels(QUEUED).spec(suspend=True).obj()
    # As the reconcile sees it: the index's snapshot of the child Job.
    (seen,) = snapshot_of(held)
    observed = CompressionObserved("minilm", spec, {}, 1, None, [], NOW)
    decided = plan(replace(observed, job=seen))
    running = find_condition(decided.status_patch["conditions"], "Running")
    assert decided.status_patch["phase"] == "Pending"
    assert "waits for Kueue to admit it from queue 'team-a'" in running["message"]
