"""What a CompressionJob's status is, given its child batch/v1 Job and pods. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from torchyard.admission import Event
from torchyard.api.compression import CompressionJobSpec
from torchyard.conditions import find_condition, set_condition
from torchyard.lineage import WAIT_SECONDS, Producer, gate
from torchyard.podstatus import OOM_KILLED, latest_outcome, pending_message

SUCCEEDED = "Succeeded"
FAILED = "Failed"
RUNNING = "Running"
TERMINAL = (SUCCEEDED, FAILED)
MODEL_NOT_FOUND = "ModelNotFound"
"""The workload's reason when the model is not at its URI (workloads.compress.source)."""


@dataclass(frozen=True)
class Plan:
    """What the controller should do: create the child Job, patch status, post Events."""

    status_patch: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    create_job: bool = False
    delete_job: bool = False
    """Delete the child Job (it ran before its model's producer had written the model)."""
    model_digest: str | None = None
    """The digest the created Job must find its model at (spec's, else its producer's)."""
    delete_object: bool = False
    requeue_after: float | None = None


def _job_condition(job: dict[str, Any], type: str) -> dict[str, Any] | None:
    found = find_condition((job.get("status") or {}).get("conditions") or [], type)
    return found if found and found.get("status") == "True" else None


def _result_block(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if not result:
        return None
    keys = ("artifact", "before", "after", "compressionRatio", "speedup", "metricDrop")
    block = {key: result[key] for key in keys if result.get(key) is not None}
    return block or None


def plan(
    name: str,
    spec: CompressionJobSpec,
    status: dict[str, Any],
    generation: int,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    now: datetime,
    *,
    producer: Producer | None = None,
) -> Plan:
    """Map the child Job's state onto the CompressionJob, and say what to do next.
    `producer` is the job in the namespace that writes this job's model, if any
    (torchyard.lineage): the child Job is created only once it has succeeded."""
    conditions = list(status.get("conditions") or [])
    phase = status.get("phase") or "Pending"

    def condition(type: str, state: str, reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(
            conditions,
            type=type,
            status=state,  # type: ignore[arg-type]
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )

    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    patch: dict[str, Any] = {"observedGeneration": generation}
    events: list[Event] = []

    if phase in TERMINAL:
        return _after_the_end(spec, status, now)

    if job is None:
        started = gate(spec.model, producer)
        patch["input"] = started.input
        if started.failure is not None:
            condition(FAILED, "True", "InputFailed", started.failure)
            patch.update(
                phase=FAILED, conditions=conditions, completionTime=stamp, message=started.failure
            )
            events.append(Event("Warning", "InputFailed", started.failure))
            return Plan(patch, events, requeue_after=_ttl_delay(spec, stamp, now))
        if started.waiting is not None:
            return _wait_for_input(patch, conditions, events, started.waiting, generation, now)
        # The controller posts the JobCreated Event once the create call succeeded.
        condition("Created", "True", "JobCreated", f"created Job {name}-compress")
        patch.update(phase="Pending", conditions=conditions, message="waiting for the pod")
        return Plan(patch, events, create_job=True, model_digest=started.digest)

    job_status = job.get("status") or {}
    attempts = (
        int(job_status.get("failed") or 0)
        + int(job_status.get("active") or 0)
        + int(job_status.get("succeeded") or 0)
    )
    patch["attempts"] = attempts
    if job_status.get("startTime") and not status.get("startTime"):
        patch["startTime"] = job_status["startTime"]

    if _job_condition(job, "Complete"):
        outcome = latest_outcome(pods, "Succeeded")
        result = _result_block(outcome.result if outcome else None)
        summary = _summary(result)
        condition(RUNNING, "False", SUCCEEDED, "the compression pod has finished")
        condition(SUCCEEDED, "True", "Compressed", summary)
        patch.update(
            phase=SUCCEEDED,
            conditions=conditions,
            completionTime=job_status.get("completionTime") or stamp,
            message=summary,
        )
        if result:
            patch["result"] = result
        read = (outcome.result if outcome else None) or {}
        if isinstance(read.get("input"), dict):
            patch["input"] = {**(status.get("input") or {}), **read["input"]}
        events.append(Event("Normal", SUCCEEDED, summary))
        return Plan(patch, events, requeue_after=_ttl_delay(spec, patch["completionTime"], now))

    failed = _job_condition(job, "Failed")
    if failed:
        reason, message = _failure(failed, pods)
        if reason == MODEL_NOT_FOUND and producer is not None and producer.phase != FAILED:
            # Applied together, this job may start before its producer is even seen:
            # what it found missing is on its way, so wait for it and run again.
            waiting = gate(spec.model, producer).waiting or (
                f"model {spec.model.uri} was not there yet; {producer.ref} writes it"
            )
            waited = _wait_for_input(patch, conditions, events, waiting, generation, now)
            return replace(waited, delete_job=True)
        condition(RUNNING, "False", reason, message)
        condition(FAILED, "True", reason, message)
        patch.update(phase=FAILED, conditions=conditions, completionTime=stamp, message=message)
        outcome = latest_outcome(pods, "Failed")
        result = _result_block(outcome.result if outcome else None)
        if result:
            patch["result"] = result
        events.append(Event("Warning", reason, message))
        return Plan(patch, events, requeue_after=_ttl_delay(spec, stamp, now))

    pod_phases = {(p.get("status") or {}).get("phase") for p in pods}
    # A pod that has succeeded is still this attempt running until its Job says Complete:
    # the Job controller records it a moment later, and the phase must not step back.
    if pod_phases & {"Running", "Succeeded"}:
        if phase != RUNNING:
            events.append(Event("Normal", RUNNING, f"compression pod started (attempt {attempts})"))
        condition(RUNNING, "True", "PodRunning", f"attempt {attempts} of {spec.backoff_limit + 1}")
        patch.update(phase=RUNNING, conditions=conditions, message=f"running attempt {attempts}")
    else:
        retrying = int(job_status.get("failed") or 0) > 0
        reason = "Retrying" if retrying else "PodPending"
        text = pending_message(pods, retrying)
        condition(RUNNING, "False", reason, text)
        patch.update(phase="Pending", conditions=conditions, message=text)
    return Plan(patch, events)


def _wait_for_input(
    patch: dict[str, Any],
    conditions: list[dict[str, Any]],
    events: list[Event],
    waiting: str,
    generation: int,
    now: datetime,
) -> Plan:
    """Pending until the job that writes the model has succeeded (torchyard.lineage)."""
    before = find_condition(conditions, "Created") or {}
    if before.get("reason") != "WaitingForInput":
        events.append(Event("Normal", "WaitingForInput", waiting))
    conditions = set_condition(
        conditions,
        type="Created",
        status="False",
        reason="WaitingForInput",
        message=waiting,
        generation=generation,
        now=now,
    )
    patch.update(phase="Pending", conditions=conditions, message=waiting)
    return Plan(patch, events, requeue_after=WAIT_SECONDS)


def _after_the_end(spec: CompressionJobSpec, status: dict[str, Any], now: datetime) -> Plan:
    completion = status.get("completionTime")
    delay = _ttl_delay(spec, completion, now) if completion else None
    if delay is not None and delay <= 0:
        return Plan({}, [], delete_object=True)
    return Plan({}, [], requeue_after=delay)


def _ttl_delay(spec: CompressionJobSpec, completion: str, now: datetime) -> float | None:
    if spec.ttl_seconds_after_finished is None:
        return None
    finished = datetime.fromisoformat(completion.replace("Z", "+00:00"))
    # In seconds, not dates: finished + ttl overflows datetime for a huge TTL (stored
    # before the API capped it), and a planner must never raise.
    return spec.ttl_seconds_after_finished - (now - finished).total_seconds()


def _failure(job_failed: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[str, str]:
    """Reason and message of a failed child Job, from the pod that said most about it."""
    outcome = latest_outcome(pods, "Failed")
    job_reason = job_failed.get("reason") or "Failed"
    if job_reason == "DeadlineExceeded":
        return "DeadlineExceeded", (
            "the job ran longer than activeDeadlineSeconds; raise it or make the job smaller"
        )
    if job_reason == "PodFailurePolicy" and outcome is not None:
        return outcome.reason or "PermanentError", outcome.message
    detail = ""
    if outcome and outcome.message:
        detail = f": the last attempt (exit code {outcome.exit_code}) said: {outcome.message}"
    if job_reason == "BackoffLimitExceeded":
        # Out of memory is the cause a user can act on, so it is the reason.
        reason = OOM_KILLED if outcome and outcome.reason == OOM_KILLED else job_reason
        return reason, f"all retries (backoffLimit) failed{detail}"
    return job_reason, (job_failed.get("message") or "the Job failed") + detail


def _summary(result: dict[str, Any] | None) -> str:
    if not result:
        return "compressed"
    parts = []
    if result.get("compressionRatio"):
        parts.append(f"{result['compressionRatio']:.2f}x smaller")
    if result.get("speedup"):
        parts.append(f"{result['speedup']:.2f}x faster")
    if result.get("metricDrop") is not None:
        parts.append(f"metric drop {result['metricDrop']:.4f}")
    digest = (result.get("artifact") or {}).get("digest")
    if digest:
        parts.append(f"artifact {digest[:19]}")
    return "compressed: " + ", ".join(parts) if parts else "compressed"
