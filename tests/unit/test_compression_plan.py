"""How a CompressionJob's status follows its child Job and pods (pure decisions)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tests.builders import batch_job, pod
from tests.objects import sample
from torchyard.api.compression import CompressionJobSpec
from torchyard.conditions import find_condition
from torchyard.plans.compression import CompressionObserved, plan
from torchyard.resources.compression import compression_job
from torchyard.validation import parse_spec

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _spec(**changes) -> CompressionJobSpec:
    return parse_spec(CompressionJobSpec, sample("CompressionJob")["spec"] | changes)


def _observe(**changes) -> CompressionObserved:
    """A new job with no child Job yet, seen at NOW; each test names what it changes."""
    new = CompressionObserved("minilm-int8", _spec(), {}, 1, None, [], NOW)
    return replace(new, **changes)


JOB = batch_job("minilm-int8-compress").status(startTime="2026-11-28T11:59:00Z")
"""The child Job as the Job controller started it: each test clone()s it and adds what
became of its pods."""
ATTEMPT = pod("minilm-int8-compress-a").created("2026-11-28T11:59:00Z")
"""The pod of the Job's first attempt, likewise."""

RESULT = {
    "artifact": {"uri": "pvc://models/out", "digest": "sha256:" + "a" * 64, "bytes": 1000},
    "before": {"bytes": 4000, "latencyMs": 10.0, "metric": 1.0},
    "after": {"bytes": 1000, "latencyMs": 5.0, "metric": 0.99},
    "compressionRatio": 4.0,
    "speedup": 2.0,
    "metricDrop": 0.01,
}


def test_without_a_child_job_one_is_created():
    decided = plan(_observe())
    assert decided.create_job
    assert decided.status_patch["phase"] == "Pending"


def test_unschedulable_pod_says_why_instead_of_hanging():
    job = JOB.clone().status(active=1).obj()
    pending = (
        pod("minilm-int8-compress-x")
        .phase("Pending")
        .condition("PodScheduled", "Unschedulable", "0/0 nodes are available", status="False")
    )
    decided = plan(_observe(job=job, pods=[pending.obj()]))
    assert decided.status_patch["phase"] == "Pending"
    running = find_condition(decided.status_patch["conditions"], "Running")
    assert "0/0 nodes are available" in running["message"]


def test_running_pod_makes_the_job_running_once():
    job, running = JOB.clone().status(active=1).obj(), ATTEMPT.clone().phase("Running").obj()
    first = plan(_observe(job=job, pods=[running]))
    assert first.status_patch["phase"] == "Running"
    assert first.status_patch["attempts"] == 1
    assert first.status_patch["startTime"] == "2026-11-28T11:59:00Z"
    assert [e.reason for e in first.events] == ["Running"]
    again = plan(_observe(status=first.status_patch, job=job, pods=[running]))
    assert again.events == []


def test_a_finished_pod_keeps_the_job_running_until_its_job_completes():
    job = JOB.clone().status(active=1).obj()
    attempt = ATTEMPT.clone().phase("Running")
    running = plan(_observe(job=job, pods=[attempt.obj()]))
    # The pod has exited 0; the Job controller has not yet marked the Job Complete.
    finished = attempt.phase("Succeeded").terminated(0, message=json.dumps(RESULT)).obj()
    between = plan(_observe(status=running.status_patch, job=job, pods=[finished]))
    assert between.status_patch["phase"] == "Running"
    assert between.events == []


def test_success_copies_the_workload_result_into_status():
    job = (
        JOB.clone()
        .condition("Complete", "Completed")
        .status(succeeded=1, completionTime="2026-11-28T12:00:00Z")
    )
    pods = [ATTEMPT.clone().phase("Succeeded").terminated(0, message=json.dumps(RESULT)).obj()]
    decided = plan(_observe(status={"phase": "Running"}, job=job.obj(), pods=pods))
    status = decided.status_patch
    assert status["phase"] == "Succeeded"
    assert status["result"]["artifact"]["digest"] == RESULT["artifact"]["digest"]
    assert status["result"]["compressionRatio"] == 4.0
    assert status["completionTime"] == "2026-11-28T12:00:00Z"
    assert find_condition(status["conditions"], "Succeeded")["status"] == "True"
    assert "4.00x smaller" in decided.events[0].message


def test_a_malformed_figure_from_the_pod_is_left_out_not_written():
    # The pod writes the termination message: a value the status schema would refuse
    # must not make the API server refuse the whole status write (phase, conditions).
    job = (
        JOB.clone()
        .condition("Complete", "Completed")
        .status(succeeded=1, completionTime="2026-11-28T12:00:00Z")
    )
    hostile = {
        **RESULT,
        "speedup": "fast",
        "minCosine": 0.98,
        "measuredOn": {"threads": "two", "cpu": "AVX512"},
        "search": {"trials": 3, "chosen": "dynamic, smoothing 0.65", "reason": "passed"},
    }
    message = json.dumps(hostile).replace("0.98", "NaN")
    pods = [ATTEMPT.clone().phase("Succeeded").terminated(0, message=message).obj()]
    status = plan(_observe(status={"phase": "Running"}, job=job.obj(), pods=pods)).status_patch
    result = status["result"]
    assert status["phase"] == "Succeeded"
    assert result["compressionRatio"] == 4.0 and result["search"]["trials"] == 3
    assert "speedup" not in result and "minCosine" not in result and "measuredOn" not in result


def test_permanent_failure_reports_the_workload_reason_and_figures():
    gate = {
        "reason": "QualityGateFailed",
        "message": "metric dropped 0.05 > maxDrop 0.02",
        "before": {"metric": 0.97},
        "after": {"metric": 0.92},
    }
    job = JOB.clone().condition("Failed", "PodFailurePolicy").status(failed=1).obj()
    failed_pod = ATTEMPT.clone().phase("Failed").terminated(3, message=json.dumps(gate)).obj()
    decided = plan(_observe(job=job, pods=[failed_pod]))
    status = decided.status_patch
    assert status["phase"] == "Failed"
    failed = find_condition(status["conditions"], "Failed")
    assert failed["reason"] == "QualityGateFailed"
    assert "maxDrop" in failed["message"]
    assert status["result"]["after"] == {"metric": 0.92}
    assert "artifact" not in status["result"]
    assert decided.events[0].type == "Warning"


def test_deadline_exceeded_is_named():
    job = JOB.clone().condition("Failed", "DeadlineExceeded").status(failed=1).obj()
    decided = plan(_observe(job=job))
    assert find_condition(decided.status_patch["conditions"], "Failed")["reason"] == (
        "DeadlineExceeded"
    )


def test_backoff_limit_carries_the_last_attempts_log():
    job = JOB.clone().condition("Failed", "BackoffLimitExceeded").status(failed=3).obj()
    last = pod("minilm-int8-compress-c").created("2026-11-28T11:59:30Z").phase("Failed")
    pods = [last.terminated(137, message="Killed: out of memory").obj()]
    decided = plan(_observe(job=job, pods=pods))
    failed = find_condition(decided.status_patch["conditions"], "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "out of memory" in failed["message"]


def test_a_job_whose_last_attempt_ran_out_of_memory_fails_as_oomkilled():
    job = JOB.clone().condition("Failed", "BackoffLimitExceeded").status(failed=3).obj()
    child = compression_job(
        "minilm-int8", "team-a", _spec(resources={"limits": {"memory": "96Mi"}})
    )
    oom = (
        pod("minilm-int8-compress-c")
        .created("2026-11-28T11:59:30Z")
        .spec(**child["spec"]["template"]["spec"])
        .phase("Failed")
        .terminated(137, reason="OOMKilled")
    )
    decided = plan(_observe(job=job, pods=[oom.obj()]))
    failed = find_condition(decided.status_patch["conditions"], "Failed")
    assert failed["reason"] == "OOMKilled"
    assert "exit code 137" in failed["message"]
    assert "memory limit of 96Mi" in failed["message"]
    assert "spec.resources.limits.memory" in failed["message"]


def test_retry_in_progress_is_pending_with_reason_retrying():
    job = JOB.clone().status(failed=1).obj()
    failed_pod = ATTEMPT.clone().phase("Failed").terminated(137).obj()
    decided = plan(_observe(job=job, pods=[failed_pod]))
    assert decided.status_patch["phase"] == "Pending"
    assert find_condition(decided.status_patch["conditions"], "Running")["reason"] == "Retrying"


def test_ttl_deletes_the_finished_job_on_time():
    spec = _spec(ttlSecondsAfterFinished=60)
    finished = {"phase": "Succeeded", "completionTime": "2026-11-28T12:00:00Z"}
    early = plan(_observe(spec=spec, status=finished, now=NOW + timedelta(seconds=30)))
    assert not early.delete_object
    assert early.requeue_after == 30
    late = plan(_observe(spec=spec, status=finished, now=NOW + timedelta(seconds=61)))
    assert late.delete_object


def test_a_ttl_stored_before_the_api_capped_it_never_overflows():
    # model_copy does not validate: a spec as an object stored before the maxima existed.
    spec = _spec().model_copy(update={"ttl_seconds_after_finished": 100_000_000_000_000})
    finished = {"phase": "Succeeded", "completionTime": "2026-11-28T12:00:00Z"}
    decided = plan(_observe(spec=spec, status=finished, now=NOW + timedelta(seconds=30)))
    assert not decided.delete_object
    assert decided.requeue_after == 100_000_000_000_000 - 30


def test_the_pod_knows_its_job_so_a_retry_recognises_its_own_artifact():
    manifest = compression_job("minilm-int8", "team-a", _spec(), "0c6f-uid")
    env = {
        e["name"]: e["value"] for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["TORCHYARD_JOB"] == "CompressionJob/minilm-int8"
    assert env["TORCHYARD_JOB_UID"] == "0c6f-uid"


def test_finished_job_is_never_restarted():
    decided = plan(_observe(status={"phase": "Failed"}))
    assert not decided.create_job and decided.status_patch == {}


def test_child_job_fails_permanent_exit_codes_at_once_and_mounts_claims():
    manifest = compression_job("minilm-int8", "team-a", _spec())
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 1800
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [3]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["models"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert json.loads(env["TORCHYARD_SPEC"])["method"] == "quantize"
    assert spec["template"]["metadata"]["labels"]["torchyard.io/compressionjob"] == "minilm-int8"


def test_registered_version_is_named_after_model_and_version_and_not_owned():
    from torchyard.api.modelversion import RegisterAs
    from torchyard.resources.registration import model_version

    artifact = RESULT["artifact"] | {"format": "torchyard"}
    version = model_version(RegisterAs(model="minilm", version="v1.2"), artifact, "team-a", "x.y")
    assert version["metadata"]["name"] == "minilm-v1-2"
    assert "ownerReferences" not in version["metadata"]
    assert version["metadata"]["labels"]["torchyard.io/model"] == "minilm"
    assert version["spec"]["artifact"]["digest"] == RESULT["artifact"]["digest"]
