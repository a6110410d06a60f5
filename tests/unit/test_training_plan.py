"""Gang semantics of a TrainingJob, decided purely from its pods."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import PodBuilder
from tests.objects import sample
from torchyard.api.training import TrainingJobSpec, TrainingProgress
from torchyard.conditions import EndOfLife, end_of_life, find_condition, set_condition
from torchyard.controllers.jobs import wording_only
from torchyard.plans.training import TrainingObserved, plan
from torchyard.resources.training import headless_service, training_pod
from torchyard.validation import parse_spec

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _spec(**changes) -> TrainingJobSpec:
    return parse_spec(TrainingJobSpec, sample("TrainingJob")["spec"] | changes)


def _replica(replica: int, attempt: int = 0) -> PodBuilder:
    """The pod the controller creates for `replica`: each test says what became of it."""
    return PodBuilder.wrap(training_pod("digits-ddp", "team-a", _spec(), replica, attempt))


def _observe(**changes) -> TrainingObserved:
    """A new job whose Service exists and that has no pods yet, seen at NOW; each test
    names what it changes."""
    new = TrainingObserved("digits-ddp", _spec(), {}, 1, [], True, NOW)
    return replace(new, **changes)


def test_a_new_job_gets_its_service_and_every_replica():
    decided = plan(_observe(service_exists=False))
    assert decided.create_service
    assert decided.create_replicas == [0, 1]
    assert decided.status_patch["phase"] == "Pending"
    assert decided.status_patch["startTime"] == "2026-11-28T12:00:00Z"
    # the pods it is creating are in status already (no second write when they appear)
    assert decided.status_patch["replicaStatuses"] == [
        {"index": 0, "pod": "digits-ddp-worker-0", "phase": "Pending"},
        {"index": 1, "pod": "digits-ddp-worker-1", "phase": "Pending"},
    ]


def test_a_replica_missing_from_a_running_gang_is_listed_as_being_created():
    decided = plan(
        _observe(
            status={"phase": "Pending", "startTime": "2026-11-28T11:00:00Z"},
            pods=[_replica(0).phase("Running").obj()],
        )
    )
    assert decided.create_replicas == [1]
    assert [r.get("phase") for r in decided.status_patch["replicaStatuses"]] == [
        "Running",
        "Pending",
    ]


def test_all_replicas_running_makes_the_job_running_with_one_event():
    pods = [_replica(i).phase("Running").obj() for i in (0, 1)]
    first = plan(_observe(pods=pods))
    assert first.status_patch["phase"] == "Running"
    assert [e.reason for e in first.events] == ["Running"]
    assert [r["phase"] for r in first.status_patch["replicaStatuses"]] == ["Running", "Running"]
    assert plan(_observe(status=first.status_patch, pods=pods)).events == []


def test_one_failed_replica_restarts_the_whole_gang():
    pods = [
        _replica(0).phase("Running").obj(),
        _replica(1).phase("Failed").terminated(137, message="Killed").obj(),
    ]
    assert _spec().recovery == "gang"  # the default
    decided = plan(
        _observe(status={"phase": "Running", "startTime": "2026-11-28T11:00:00Z"}, pods=pods)
    )
    assert decided.status_patch["phase"] == "Restarting"
    assert decided.status_patch["restarts"] == 1
    assert "recoveries" not in decided.status_patch
    assert sorted(decided.delete_pods) == ["digits-ddp-worker-0", "digits-ddp-worker-1"]
    assert [e.reason for e in decided.events] == ["Restarting"]
    assert decided.create_replicas == []
    restarting = find_condition(decided.status_patch["conditions"], "Restarting")
    assert "replica 1" in restarting["message"] and "137" in restarting["message"]
    assert decided.events[0].type == "Warning"


# -- recovery inPlace ---------------------------------------------------------------------

IN_PLACE = _spec(recovery="inPlace")
RUNNING = {"phase": "Running", "startTime": "2026-11-28T11:00:00Z"}


def _placed(replica: int, incarnation: int = 0, attempt: int = 0) -> PodBuilder:
    """A replica of a job with recovery inPlace; `incarnation` tells its pods apart (uid)."""
    pod = training_pod("digits-ddp", "team-a", IN_PLACE, replica, attempt)
    pod["metadata"]["uid"] = f"pod-{replica}-{incarnation}"
    return PodBuilder.wrap(pod)


def _replica_1_killed() -> list[dict]:
    """Replica 1 killed (exit 137) while replica 0 runs on, before any recovery."""
    return [
        _placed(0).phase("Running").obj(),
        _placed(1).phase("Failed").terminated(137, message="Killed").obj(),
    ]


def test_in_place_a_failed_replica_alone_is_recreated_and_counted_as_a_recovery():
    decided = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=_replica_1_killed()))
    assert decided.delete_pods == ["digits-ddp-worker-1"]  # replica 0 waits at the rendezvous
    assert decided.create_replicas == []  # not before the failed pod is gone
    patch = decided.status_patch
    assert patch["recoveries"] == 1
    assert "restarts" not in patch and "disruptions" not in patch  # same attempt, same pods
    assert patch["phase"] == "Restarting"
    restarting = find_condition(patch["conditions"], "Restarting")
    assert (restarting["status"], restarting["reason"]) == ("True", "ReplicaRecovering")
    assert find_condition(patch["conditions"], "Running")["status"] == "False"
    assert [(e.type, e.reason) for e in decided.events] == [("Warning", "Recovering")]
    message = decided.events[0].message
    assert "replica 1 (digits-ddp-worker-1) failed with exit code 137: Killed" in message
    assert "recreating only replica 1" in message
    assert "restart 1 of 3" in message  # the sample's backoffLimit


def test_in_place_the_same_failed_pod_seen_again_is_deleted_again_but_not_counted_twice():
    pods = _replica_1_killed()
    first = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=pods))
    recovered = {**RUNNING, **first.status_patch}
    assert recovered["recoveries"] == 1
    # The next reconcile still sees the pod, whose uid status keeps: the deletion is
    # asked for again, and nothing else happens.
    assert recovered["recoveredPods"] == [pods[1]["metadata"]["uid"]]
    again = plan(_observe(spec=IN_PLACE, status=recovered, pods=pods))
    assert again.delete_pods == ["digits-ddp-worker-1"]
    assert again.create_replicas == []
    assert again.status_patch.get("recoveries", 1) == 1
    assert "restarts" not in again.status_patch
    assert again.status_patch.get("phase", "Restarting") == "Restarting"
    assert again.events == []


def test_in_place_once_the_failed_pod_is_gone_only_it_is_created_and_the_job_runs_again():
    first = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=_replica_1_killed()))
    recovered = {**RUNNING, **first.status_patch}
    survivor = _placed(0).phase("Running").obj()
    gone = plan(_observe(spec=IN_PLACE, status=recovered, pods=[survivor]))
    assert gone.create_replicas == [1]
    assert gone.delete_pods == []
    assert gone.status_patch["phase"] == "Restarting"
    assert gone.status_patch["replicaStatuses"] == [
        {"index": 0, "pod": "digits-ddp-worker-0", "phase": "Running"},
        {"index": 1, "pod": "digits-ddp-worker-1", "phase": "Pending"},
    ]
    # The replacement (a new pod) runs beside the survivor.
    waiting = {**recovered, **gone.status_patch}
    both = [survivor, _placed(1, incarnation=1).phase("Running").obj()]
    running = plan(_observe(spec=IN_PLACE, status=waiting, pods=both))
    assert running.create_replicas == [] and running.delete_pods == []
    assert running.status_patch["phase"] == "Running"
    restarting = find_condition(running.status_patch["conditions"], "Restarting")
    assert (restarting["status"], restarting["reason"]) == ("False", "Resumed")
    assert find_condition(running.status_patch["conditions"], "Running")["status"] == "True"
    assert [e.reason for e in running.events] == ["Running"]
    assert running.status_patch.get("recoveries", 1) == 1


def test_in_place_a_failed_replica_0_still_restarts_the_whole_gang():
    """Replica 0 hosts the rendezvous: the others cannot wait for it."""
    pods = [
        _placed(0).phase("Failed").terminated(137, message="Killed").obj(),
        _placed(1).phase("Running").obj(),
    ]
    decided = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=pods))
    assert sorted(decided.delete_pods) == ["digits-ddp-worker-0", "digits-ddp-worker-1"]
    assert decided.status_patch["restarts"] == 1
    assert "recoveries" not in decided.status_patch
    assert decided.status_patch["phase"] == "Restarting"
    restarting = find_condition(decided.status_patch["conditions"], "Restarting")
    assert restarting["reason"] == "ReplicaFailed"
    assert [e.reason for e in decided.events] == ["Restarting"]


def test_in_place_a_permanent_error_of_replica_1_fails_the_job_without_recovering():
    said = json.dumps({"reason": "ModelNotFound", "message": "no model at pvc://x"})
    pods = [
        _placed(0).phase("Running").obj(),
        _placed(1).phase("Failed").terminated(3, message=said).obj(),
    ]
    decided = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=pods))
    assert decided.status_patch["phase"] == "Failed"
    assert "recoveries" not in decided.status_patch and "restarts" not in decided.status_patch
    assert find_condition(decided.status_patch["conditions"], "Failed")["reason"] == (
        "ModelNotFound"
    )
    assert decided.delete_pods == ["digits-ddp-worker-0"]  # the one still running
    assert "Recovering" not in [e.reason for e in decided.events]


def test_in_place_the_last_restart_of_backoff_limit_may_be_a_recovery():
    status = {**RUNNING, "restarts": 1, "recoveries": 1}
    pods = [
        _placed(0, attempt=1).phase("Running").obj(),
        _placed(1, incarnation=1, attempt=1).phase("Failed").terminated(137).obj(),
    ]
    decided = plan(_observe(spec=IN_PLACE, status=status, pods=pods))
    assert decided.delete_pods == ["digits-ddp-worker-1"]
    assert decided.status_patch["recoveries"] == 2
    assert "restart 3 of 3" in decided.events[0].message


@pytest.mark.parametrize(
    ("restarts", "recoveries"),
    [(3, 0), (2, 1), (0, 3)],
)
def test_in_place_restarts_and_recoveries_together_use_up_backoff_limit(restarts, recoveries):
    status = {**RUNNING, "restarts": restarts, "recoveries": recoveries}
    pods = [
        _placed(0, attempt=restarts).phase("Running").obj(),
        _placed(1, recoveries, attempt=restarts).phase("Failed").terminated(137).obj(),
    ]
    decided = plan(_observe(spec=IN_PLACE, status=status, pods=pods))
    assert decided.status_patch["phase"] == "Failed"
    failed = find_condition(decided.status_patch["conditions"], "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "all 3 restarts (backoffLimit) used" in failed["message"]
    assert decided.status_patch.get("restarts", restarts) == restarts
    assert decided.status_patch.get("recoveries", recoveries) == recoveries
    assert decided.delete_pods == ["digits-ddp-worker-0"]  # the one still running


def test_in_place_replica_0_failing_after_a_recovery_still_restarts_the_gang():
    status = {**RUNNING, "recoveries": 1, "recoveredPods": ["pod-1-0"]}
    pods = [
        # replica 0 ran through replica 1's recovery: the same pod as before it
        _placed(0).phase("Failed").terminated(1, message="CUDA error").obj(),
        _placed(1, incarnation=1).phase("Running").obj(),
    ]
    decided = plan(_observe(spec=IN_PLACE, status=status, pods=pods))
    assert sorted(decided.delete_pods) == ["digits-ddp-worker-0", "digits-ddp-worker-1"]
    assert decided.status_patch["restarts"] == 1
    assert [e.reason for e in decided.events] == ["Restarting"]


def test_a_replica_is_named_for_the_rendezvous():
    for replica in (0, 1):
        pod = training_pod("digits-ddp", "team-a", IN_PLACE, replica, 1, "uid")
        assert pod["metadata"]["labels"]["torchyard.io/attempt"] == "1"
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        # resolvable under the headless Service, as the pod's hostname.subdomain
        assert env["TORCHYARD_NODE_ADDR"] == f"digits-ddp-worker-{replica}.digits-ddp"
        assert env["TORCHYARD_NODE_ADDR"] == (
            f"{pod['spec']['hostname']}.{pod['spec']['subdomain']}"
        )


def test_in_place_under_a_kueue_queue_restarts_the_gang():
    """Kueue holds a failed pod of an admitted group until the group has a replacement,
    which cannot exist under the same name first: the gang restarts instead."""
    decided = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=_replica_1_killed(), queued=True))
    assert sorted(decided.delete_pods) == ["digits-ddp-worker-0", "digits-ddp-worker-1"]
    assert decided.status_patch["restarts"] == 1
    assert "recoveries" not in decided.status_patch


def test_in_place_a_failed_rendezvous_restarts_the_gang():
    """A replica whose rendezvous was closed (another replica's launcher ended) or timed
    out: a replacement could not join it either."""
    said = json.dumps({"reason": "RendezvousFailed", "message": "RendezvousClosedError: "})
    pods = [
        _placed(0).phase("Running").obj(),
        _placed(1).phase("Failed").terminated(1, message=said).obj(),
    ]
    decided = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=pods))
    assert sorted(decided.delete_pods) == ["digits-ddp-worker-0", "digits-ddp-worker-1"]
    assert decided.status_patch["restarts"] == 1


def test_in_place_a_failure_while_replica_0_is_not_running_restarts_the_gang():
    """Replica 0 already ended (here: succeeded): nobody hosts the rendezvous."""
    pods = [
        _placed(0).phase("Succeeded").terminated(0).obj(),
        _placed(1).phase("Failed").terminated(137).obj(),
    ]
    decided = plan(_observe(spec=IN_PLACE, status=RUNNING, pods=pods))
    assert sorted(decided.delete_pods) == ["digits-ddp-worker-0", "digits-ddp-worker-1"]
    assert decided.status_patch["restarts"] == 1


def test_in_place_a_new_permanent_error_beside_a_pod_already_recovered_from_fails_the_job():
    """The decisive failure is the permanent one, not the leftover listed first."""
    said = json.dumps({"reason": "ModelNotFound", "message": "no model at pvc://x"})
    status = {**RUNNING, "recoveries": 1, "recoveredPods": ["pod-1-0"]}
    spec = _spec(recovery="inPlace", parallelism={"mode": "data", "replicas": 3})
    pods = [
        _placed(0).phase("Running").obj(),
        _placed(1).phase("Failed").terminated(137).obj(),
        _placed(2).phase("Failed").terminated(3, message=said).obj(),
    ]
    decided = plan(_observe(spec=spec, status=status, pods=pods))
    assert decided.status_patch["phase"] == "Failed"
    assert find_condition(decided.status_patch["conditions"], "Failed")["reason"] == (
        "ModelNotFound"
    )


def test_next_attempt_waits_until_the_old_pods_are_gone():
    status = {"phase": "Restarting", "restarts": 1, "startTime": "2026-11-28T11:00:00Z"}
    leftover = [_replica(0, attempt=0).phase("Running").obj()]
    decided = plan(_observe(status=status, pods=leftover))
    assert decided.delete_pods == ["digits-ddp-worker-0"]
    assert decided.create_replicas == []
    clean = plan(_observe(status=status))
    assert clean.create_replicas == [0, 1]
    assert clean.status_patch["phase"] == "Restarting"


def test_a_preempted_replica_restarts_the_gang_without_using_up_backoff_limit():
    """Kueue's preemption (TerminationTarget) or the scheduler's (DisruptionTarget) is
    not the workload's failure: the job goes on even with every restart of backoffLimit
    used, and the next attempt is a new set of pods."""
    status = {"phase": "Running", "restarts": 1, "startTime": "2026-11-28T11:00:00Z"}
    preempted = (
        _replica(0, attempt=1)
        .phase("Failed")
        .terminated(143, message="")
        .condition("TerminationTarget", "StoppedByKueue", "Preempted to accommodate a workload")
    )
    pods = [preempted.obj(), _replica(1, attempt=1).phase("Running").obj()]
    decided = plan(_observe(spec=_spec(backoffLimit=1), status=status, pods=pods))
    assert decided.status_patch["phase"] == "Restarting"
    assert decided.status_patch["disruptions"] == 1 and "restarts" not in decided.status_patch
    assert sorted(decided.delete_pods) == ["digits-ddp-worker-0", "digits-ddp-worker-1"]
    restarting = find_condition(decided.status_patch["conditions"], "Restarting")
    assert restarting["reason"] == "ReplicaDisrupted"
    assert "Preempted to accommodate a workload" in restarting["message"]
    assert "not counted against backoffLimit" in restarting["message"]

    # Attempt 2 (1 restart + 1 disruption) is created once the old pods are gone.
    after = {**status, "disruptions": 1, "phase": "Restarting"}
    clean = plan(_observe(spec=_spec(backoffLimit=1), status=after))
    assert clean.create_replicas == [0, 1]
    stale = plan(_observe(status=after, pods=[_replica(0, attempt=1).phase("Running").obj()]))
    assert stale.delete_pods == ["digits-ddp-worker-0"] and stale.create_replicas == []


def test_a_permanent_error_fails_at_once():
    gate = json.dumps({"reason": "ModelNotFound", "message": "no model at pvc://x"})
    pods = [
        _replica(0).phase("Failed").terminated(3, message=gate).obj(),
        _replica(1).phase("Running").obj(),
    ]
    decided = plan(_observe(status={"phase": "Running"}, pods=pods))
    assert decided.status_patch["phase"] == "Failed"
    assert "restarts" not in decided.status_patch
    failed = find_condition(decided.status_patch["conditions"], "Failed")
    assert failed["reason"] == "ModelNotFound"
    assert decided.delete_pods == ["digits-ddp-worker-1"]  # the one still running


def test_backoff_limit_exhausted_fails_with_the_failing_pods_reason():
    spec = _spec(backoffLimit=1)
    pods = [
        _replica(0, attempt=1).phase("Failed").terminated(1, message="CUDA error").obj(),
        _replica(1, attempt=1).phase("Running").obj(),
    ]
    decided = plan(_observe(spec=spec, status={"phase": "Running", "restarts": 1}, pods=pods))
    failed = find_condition(decided.status_patch["conditions"], "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "CUDA error" in failed["message"]


def test_a_replica_out_of_memory_on_the_last_attempt_fails_the_job_as_oomkilled():
    spec = _spec(backoffLimit=1, resources={"limits": {"memory": "1Gi"}})
    oom = PodBuilder.wrap(training_pod("digits-ddp", "team-a", spec, 1, 1))
    oom.phase("Failed").terminated(137, reason="OOMKilled")
    pods = [_replica(0, attempt=1).phase("Running").obj(), oom.obj()]
    decided = plan(_observe(spec=spec, status={"phase": "Running", "restarts": 1}, pods=pods))
    failed = find_condition(decided.status_patch["conditions"], "Failed")
    assert failed["reason"] == "OOMKilled"
    assert "exit code 137" in failed["message"]
    assert "memory limit of 1Gi" in failed["message"]


def test_success_records_the_artifact_and_keeps_finished_pods():
    result = {
        "artifact": {"uri": "pvc://training/out", "digest": "sha256:" + "b" * 64},
        "steps": 40,
        "finalLoss": 0.12,
    }
    pods = [
        _replica(0).phase("Succeeded").terminated(0, message=json.dumps(result)).obj(),
        _replica(1).phase("Succeeded").terminated(0).obj(),
    ]
    decided = plan(_observe(status={"phase": "Running"}, pods=pods))
    assert decided.status_patch["phase"] == "Succeeded"
    assert decided.status_patch["result"]["digest"] == result["artifact"]["digest"]
    assert decided.delete_pods == []  # cleanPodPolicy Running: nothing is running
    assert "final loss 0.1200" in decided.status_patch["message"]


def test_the_run_figures_the_artifact_leaves_out_are_kept_in_status():
    """A resumed job publishes the bytes of one that never stopped: samples/s and the
    step it resumed from are in status.progress, and a malformed figure is left out."""
    result = {
        "artifact": {"uri": "pvc://training/out", "digest": "sha256:" + "b" * 64},
        "steps": 40,
        "finalLoss": 0.12,
        "samplesPerSecond": 812.5,
        "resumedFromStep": 30,
    }
    live = {"step": 38, "totalSteps": 40, "epoch": 2, "loss": 0.2}
    pods = [
        _replica(0).phase("Succeeded").terminated(0, message=json.dumps(result)).obj(),
        _replica(1).phase("Succeeded").terminated(0).obj(),
    ]
    decided = plan(_observe(status={"phase": "Running", "progress": live}, pods=pods))
    progress = decided.status_patch["progress"]
    assert progress == {
        "step": 40,
        "totalSteps": 40,
        "epoch": 2,
        "loss": 0.12,
        "samplesPerSecond": 812.5,
        "resumedFromStep": 30,
    }
    assert decided.status_patch["progressSummary"] == "40/40"
    assert TrainingProgress.model_validate(progress).resumed_from_step == 30  # as stored
    hostile = {**result, "samplesPerSecond": "fast", "resumedFromStep": -1}
    pods[0] = _replica(0).phase("Succeeded").terminated(0, message=json.dumps(hostile)).obj()
    kept = plan(_observe(status={"phase": "Running"}, pods=pods)).status_patch["progress"]
    assert "samplesPerSecond" not in kept and "resumedFromStep" not in kept
    assert kept["step"] == 40


EVALUATION = {
    "metric": "accuracy",
    "history": [
        {"epoch": 1, "step": 16, "metrics": {"accuracy": 0.75, "loss": 0.52}},
        {"epoch": 2, "step": 32, "metrics": {"accuracy": 0.8125, "loss": 0.43}},
    ],
    "bestEpoch": 2,
    "stoppedEarly": True,
}


def test_an_early_stop_and_the_held_out_metric_reach_status_and_the_message():
    result = {
        "artifact": {"uri": "pvc://training/out", "digest": "sha256:" + "c" * 64},
        "steps": 32,
        "totalSteps": 48,
        "finalLoss": 0.3,
        "evaluation": EVALUATION,
    }
    pods = [
        _replica(0).phase("Succeeded").terminated(0, message=json.dumps(result)).obj(),
        _replica(1).phase("Succeeded").terminated(0).obj(),
    ]
    decided = plan(_observe(status={"phase": "Running"}, pods=pods)).status_patch
    assert decided["evaluation"] == EVALUATION
    assert decided["progressSummary"] == "32/48"
    assert "held-out accuracy 0.8125 after epoch 2 (stopped early)" in decided["message"]
    # A pod's malformed evaluation is left out; the job still succeeds with its artifact.
    broken = {**result, "evaluation": {**EVALUATION, "history": [{"epoch": 0}]}}
    pods[0] = _replica(0).phase("Succeeded").terminated(0, message=json.dumps(broken)).obj()
    kept = plan(_observe(status={"phase": "Running"}, pods=pods)).status_patch
    assert "evaluation" not in kept and kept["phase"] == "Succeeded"
    assert "held-out" not in kept["message"]


def test_suspend_removes_pods_and_resume_starts_again():
    pods = [_replica(i).phase("Running").obj() for i in (0, 1)]
    suspended = plan(_observe(spec=_spec(suspend=True), status={"phase": "Running"}, pods=pods))
    assert suspended.status_patch["phase"] == "Suspended"
    assert len(suspended.delete_pods) == 2
    resumed = plan(_observe(spec=_spec(suspend=False), status=suspended.status_patch))
    assert resumed.create_replicas == [0, 1]
    assert "Resumed" in [e.reason for e in resumed.events]


def test_deadline_fires_from_start_time():
    spec = _spec(activeDeadlineSeconds=600)
    status = {"phase": "Running", "startTime": "2026-11-28T11:55:00Z"}
    pods = [_replica(i).phase("Running").obj() for i in (0, 1)]
    before = plan(_observe(spec=spec, status=status, pods=pods))
    assert before.requeue_after == 300
    after = plan(_observe(spec=spec, status=status, pods=pods, now=NOW + timedelta(seconds=301)))
    assert after.status_patch["phase"] == "Failed"
    assert find_condition(after.status_patch["conditions"], "Failed")["reason"] == (
        "DeadlineExceeded"
    )
    assert len(after.delete_pods) == 2


def test_ttl_deletes_the_finished_job():
    spec = _spec(ttlSecondsAfterFinished=10)
    done = {"phase": "Succeeded", "completionTime": "2026-11-28T12:00:00Z"}
    assert plan(_observe(spec=spec, status=done, now=NOW + timedelta(seconds=5))).requeue_after == 5
    assert plan(_observe(spec=spec, status=done, now=NOW + timedelta(seconds=11))).delete_object


def test_values_stored_before_the_api_capped_them_never_overflow():
    # model_copy does not validate: a spec as an object stored before the maxima existed.
    huge = _spec().model_copy(
        update={"active_deadline_seconds": 9_000_000_000_000, "ttl_seconds_after_finished": 10**14}
    )
    running = {"phase": "Running", "startTime": "2026-11-28T11:55:00Z"}
    pods = [_replica(i).phase("Running").obj() for i in (0, 1)]
    decided = plan(_observe(spec=huge, status=running, pods=pods))
    assert decided.requeue_after == 9_000_000_000_000 - 300
    assert decided.status_patch.get("phase") != "Failed"
    done = {"phase": "Succeeded", "completionTime": "2026-11-28T12:00:00Z"}
    finished = plan(_observe(spec=huge, status=done, now=NOW + timedelta(seconds=5)))
    assert finished.requeue_after == 10**14 - 5 and not finished.delete_object


def test_every_replica_knows_its_job_so_a_gang_restart_recognises_its_own_artifact():
    for replica in (0, 1):
        pod = training_pod("digits-ddp", "team-a", _spec(), replica, 2, "7a1e-uid")
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        assert env["TORCHYARD_JOB"] == "TrainingJob/digits-ddp"
        assert env["TORCHYARD_JOB_UID"] == "7a1e-uid"


def test_pods_find_replica_zero_through_the_headless_service():
    pod = training_pod("digits-ddp", "team-a", _spec(), 1, 0)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["MASTER_ADDR"] == "digits-ddp-worker-0.digits-ddp"
    assert env["WORLD_SIZE"] == "2" and env["NODE_RANK"] == "1"
    assert pod["spec"]["hostname"] == "digits-ddp-worker-1"
    assert pod["spec"]["subdomain"] == "digits-ddp"
    service = headless_service("digits-ddp", "team-a")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True


def test_progress_report_becomes_status_and_a_summary():
    from torchyard.controllers.progress import progress_status

    update = progress_status(
        {"step": 40, "totalSteps": 120, "loss": 0.5, "samplesPerSecond": 900.0, "rank": 0}
    )
    assert update["progressSummary"] == "40/120"
    assert update["progress"] == {
        "step": 40,
        "totalSteps": 120,
        "loss": 0.5,
        "samplesPerSecond": 900.0,
    }
    assert "evaluation" not in update
    # Metrics after each epoch are shown while the job runs; what does not fit the
    # schema (a NaN, a list too long) is left out, never written half.
    assert progress_status({"step": 32, "evaluation": EVALUATION})["evaluation"] == EVALUATION
    too_long = {**EVALUATION, "history": EVALUATION["history"] * 51}
    assert "evaluation" not in progress_status({"step": 32, "evaluation": too_long})
    nan = {"metric": "accuracy", "history": [{"epoch": 1, "step": 1, "metrics": {"loss": "NaN"}}]}
    assert "evaluation" not in progress_status({"step": 32, "evaluation": nan})


def test_a_finished_job_lives_its_ttl_then_is_deleted_and_a_huge_ttl_never_raises():
    done = "2026-11-28T11:59:00Z"
    assert end_of_life(None, done, NOW) == EndOfLife(delete=False, delay=None)
    assert end_of_life(120, done, NOW).delay == 60.0
    assert end_of_life(60, done, NOW).delete
    assert end_of_life(2**62, done, NOW).delay > 0


def test_a_condition_set_again_keeps_its_place():
    first = set_condition(
        [], type="Accepted", status="True", reason="A", message="", generation=1, now=NOW
    )
    both = set_condition(
        first, type="Running", status="False", reason="B", message="", generation=1, now=NOW
    )
    again = set_condition(
        both, type="Accepted", status="True", reason="A", message="x", generation=1, now=NOW
    )
    assert [c["type"] for c in again] == ["Accepted", "Running"]


def test_only_news_is_written_at_once_wording_waits():
    replicas = [{"index": 0, "pod": "p-0", "phase": "Pending"}]
    stored = {"phase": "Pending", "message": "waiting", "replicaStatuses": replicas}
    running = [{"index": 0, "pod": "p-0", "phase": "Running"}]
    quiet = frozenset({"message"})
    assert wording_only(stored, {"message": "not scheduled"}, quiet)
    assert wording_only(stored, {"replicaStatuses": running}, quiet)
    assert not wording_only(stored, {"phase": "Running"}, quiet)
    assert not wording_only(stored, {"replicaStatuses": [{"index": 0, "pod": "p-1"}]}, quiet)
    assert not wording_only(stored, {"message": "waiting"}, quiet)  # nothing to write
