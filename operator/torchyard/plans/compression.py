"""What a CompressionJob's status is, given its child batch/v1 Job and pods. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from torchyard.admission import Event
from torchyard.api.base import rfc3339
from torchyard.api.compression import (
    CompressionJobSpec,
    CompressionJobStatus,
    CompressionResult,
    JobPhase,
)
from torchyard.conditions import Conditions, end_of_life, find_condition, seconds_left
from torchyard.plans.lineage import WAIT_SECONDS, Producer, gate
from torchyard.plans.names import TERMINAL, Phase, Reason
from torchyard.podstatus import OOM_KILLED, latest_outcome, pending_message
from torchyard.resources.kueue import QUEUE_NAME
from torchyard.validation import stored_form


@dataclass(frozen=True)
class CompressionObserved:
    """What the controller saw of a CompressionJob and its children just now."""

    name: str
    spec: CompressionJobSpec
    status: Mapping[str, Any]
    """The job's status as read (wire form, camelCase)."""
    generation: int
    job: Mapping[str, Any] | None
    """The child batch/v1 Job; None before it is created."""
    pods: Sequence[Mapping[str, Any]]
    """The child Job's pods."""
    now: datetime
    producer: Producer | None = None
    """The job in the namespace that writes this job's model, if any
    (torchyard.plans.lineage)."""

    @property
    def phase(self) -> JobPhase:
        return self.status.get("phase") or Phase.PENDING


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


def _job_condition(job: Mapping[str, Any], type: str) -> dict[str, Any] | None:
    found = find_condition((job.get("status") or {}).get("conditions") or [], type)
    return found if found and found.get("status") == "True" else None


def _result_block(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if not result:
        return None
    keys = (
        "artifact",
        "before",
        "after",
        "compressionRatio",
        "speedup",
        "metricDrop",
        "minCosine",
        "measuredOn",
        "search",
    )
    block = {key: stored_form(CompressionResult, key, result.get(key)) for key in keys}
    return {key: value for key, value in block.items() if value is not None} or None


def plan(observed: CompressionObserved) -> Plan:
    """Map the child Job's state onto the CompressionJob, and say what to do next. The
    child Job is created only once the job that writes this job's model
    (`observed.producer`), if any, has succeeded."""
    spec, status, job, pods = observed.spec, observed.status, observed.job, observed.pods
    now, producer = observed.now, observed.producer
    conditions = Conditions(status.get("conditions") or [], observed.generation, now)
    condition = conditions.set
    phase = observed.phase
    ttl = spec.ttl_seconds_after_finished
    stamp = rfc3339(now)
    patch: dict[str, Any] = {"observedGeneration": observed.generation}
    events: list[Event] = []

    if phase in TERMINAL:
        return _after_the_end(spec, status, now)

    if job is None:
        started = gate(spec.model, producer)
        patch["input"] = started.input
        if started.failure is not None:
            condition(Phase.FAILED, "True", Reason.INPUT_FAILED, started.failure)
            patch.update(
                phase=Phase.FAILED,
                conditions=conditions.list,
                completionTime=stamp,
                message=started.failure,
            )
            events.append(Event("Warning", Reason.INPUT_FAILED, started.failure))
            return Plan(patch, events, requeue_after=seconds_left(ttl, stamp, now))
        if started.waiting is not None:
            return _wait_for_input(patch, conditions, events, started.waiting)
        # The controller posts the JobCreated Event once the create call succeeded.
        condition("Created", "True", "JobCreated", f"created Job {observed.name}-compress")
        patch.update(phase=Phase.PENDING, conditions=conditions.list, message="waiting for the pod")
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
        condition(Phase.RUNNING, "False", Phase.SUCCEEDED, "the compression pod has finished")
        condition(Phase.SUCCEEDED, "True", "Compressed", summary)
        patch.update(
            phase=Phase.SUCCEEDED,
            conditions=conditions.list,
            completionTime=job_status.get("completionTime") or stamp,
            message=summary,
        )
        if result:
            patch["result"] = result
        read = (outcome.result if outcome else None) or {}
        read_input = stored_form(CompressionJobStatus, "input", read.get("input"))
        if isinstance(read_input, dict):
            patch["input"] = {**(status.get("input") or {}), **read_input}
        events.append(Event("Normal", Phase.SUCCEEDED, summary))
        return Plan(patch, events, requeue_after=seconds_left(ttl, patch["completionTime"], now))

    failed = _job_condition(job, "Failed")
    if failed:
        reason, message = _failure(failed, pods)
        if (
            reason == Reason.MODEL_NOT_FOUND
            and producer is not None
            and producer.phase != Phase.FAILED
        ):
            # Applied together, this job may start before its producer is even seen:
            # what it found missing is on its way, so wait for it and run again.
            waiting = gate(spec.model, producer).waiting or (
                f"model {spec.model.uri} was not there yet; {producer.ref} writes it"
            )
            waited = _wait_for_input(patch, conditions, events, waiting)
            return replace(waited, delete_job=True)
        condition(Phase.RUNNING, "False", reason, message)
        condition(Phase.FAILED, "True", reason, message)
        patch.update(
            phase=Phase.FAILED, conditions=conditions.list, completionTime=stamp, message=message
        )
        outcome = latest_outcome(pods, "Failed")
        result = _result_block(outcome.result if outcome else None)
        if result:
            patch["result"] = result
        events.append(Event("Warning", reason, message))
        return Plan(patch, events, requeue_after=seconds_left(ttl, stamp, now))

    pod_phases = {(p.get("status") or {}).get("phase") for p in pods}
    # A pod that has succeeded is still this attempt running until its Job says Complete:
    # the Job controller records it a moment later, and the phase must not step back.
    if pod_phases & {"Running", "Succeeded"}:
        if phase != Phase.RUNNING:
            events.append(
                Event("Normal", Phase.RUNNING, f"compression pod started (attempt {attempts})")
            )
        condition(
            Phase.RUNNING, "True", "PodRunning", f"attempt {attempts} of {spec.backoff_limit + 1}"
        )
        patch.update(
            phase=Phase.RUNNING, conditions=conditions.list, message=f"running attempt {attempts}"
        )
    else:
        retrying = int(job_status.get("failed") or 0) > 0
        reason = "Retrying" if retrying else "PodPending"
        text = _suspended_message(job) or pending_message(pods, retrying)
        condition(Phase.RUNNING, "False", reason, text)
        patch.update(phase=Phase.PENDING, conditions=conditions.list, message=text)
    return Plan(patch, events)


def is_suspended(job: Mapping[str, Any]) -> bool:
    """Whether the child Job is suspended (by Kueue until its queue admits it)."""
    return bool((job.get("spec") or {}).get("suspend"))


def _suspended_message(job: Mapping[str, Any]) -> str | None:
    """Why a suspended child Job waits: Kueue holds a Job of its queue suspended until
    it admits it (torchyard.resources.kueue); anyone else's suspension is said as such."""
    if not is_suspended(job):
        return None
    queue = ((job.get("metadata") or {}).get("labels") or {}).get(QUEUE_NAME)
    if queue:
        return (
            f"the Job waits for Kueue to admit it from queue {queue!r}: it starts once "
            "the queue has quota (kubectl get workloads shows where it stands)"
        )
    return "the Job is suspended (spec.suspend of the Job): it starts once unsuspended"


def _wait_for_input(
    patch: dict[str, Any], conditions: Conditions, events: list[Event], waiting: str
) -> Plan:
    """Pending until the job that writes the model has succeeded (torchyard.plans.lineage)."""
    before = conditions.find("Created") or {}
    if before.get("reason") != Reason.WAITING_FOR_INPUT:
        events.append(Event("Normal", Reason.WAITING_FOR_INPUT, waiting))
    conditions.set("Created", "False", Reason.WAITING_FOR_INPUT, waiting)
    patch.update(phase=Phase.PENDING, conditions=conditions.list, message=waiting)
    return Plan(patch, events, requeue_after=WAIT_SECONDS)


def _after_the_end(spec: CompressionJobSpec, status: Mapping[str, Any], now: datetime) -> Plan:
    ending = end_of_life(spec.ttl_seconds_after_finished, status.get("completionTime"), now)
    return Plan({}, [], delete_object=ending.delete, requeue_after=ending.delay)


def _failure(job_failed: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Reason and message of a failed child Job, from the pod that said most about it."""
    outcome = latest_outcome(pods, "Failed")
    job_reason = job_failed.get("reason") or "Failed"
    if job_reason == Reason.DEADLINE_EXCEEDED:
        return Reason.DEADLINE_EXCEEDED, (
            "the job ran longer than activeDeadlineSeconds; raise it or make the job smaller"
        )
    if job_reason == "PodFailurePolicy" and outcome is not None:
        return outcome.reason or Reason.PERMANENT_ERROR, outcome.message
    detail = ""
    if outcome and outcome.message:
        detail = f": the last attempt (exit code {outcome.exit_code}) said: {outcome.message}"
    if job_reason == Reason.BACKOFF_LIMIT_EXCEEDED:
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
