"""What a TrainingJob should do next, given its pods: gang start, gang restart, end. Pure.

One attempt is one set of pods, labelled with the attempt number (`attempt_number`:
status.restarts plus status.disruptions).
When any pod of the attempt fails, every pod of it is deleted; only when all are gone
is the next attempt started, so a replica never meets a peer from the old attempt at
rendezvous, and a pod left over from before an operator restart is never duplicated.
With recovery inPlace, a failed replica other than 0 is deleted alone and recreated in
the same attempt (status.recoveries; status.recoveredPods keeps it from being counted
twice) while the others wait for it at the elastic rendezvous.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from torchyard.admission import Event
from torchyard.api.base import ConditionStatus, rfc3339
from torchyard.api.training import (
    TrainingJobSpec,
    TrainingJobStatus,
    TrainingPhase,
    TrainingProgress,
)
from torchyard.conditions import Conditions, end_of_life, seconds_left
from torchyard.plans.lineage import WAIT_SECONDS, Producer, gate
from torchyard.plans.names import TERMINAL, Phase, Reason
from torchyard.podstatus import OOM_KILLED, disruption, pending_message, phase_of, pod_outcome
from torchyard.resources.training import ATTEMPT_LABEL, REPLICA_LABEL, pod_name
from torchyard.validation import stored_form
from torchyard.workloads.report import PERMANENT, RENDEZVOUS_FAILED


@dataclass(frozen=True)
class TrainingObserved:
    """What the controller saw of a TrainingJob and its children just now."""

    name: str
    spec: TrainingJobSpec
    status: Mapping[str, Any]
    """The job's status as read (wire form, camelCase)."""
    generation: int
    pods: Sequence[Mapping[str, Any]]
    """The job's pods, of every attempt."""
    service_exists: bool
    """Whether the job's headless Service exists."""
    now: datetime
    producer: Producer | None = None
    """The job in the namespace that writes this job's starting model, if any
    (torchyard.plans.lineage)."""
    queued: bool = False
    """Whether the job names a Kueue queue (torchyard.resources.kueue)."""

    @property
    def phase(self) -> TrainingPhase:
        return self.status.get("phase") or Phase.PENDING


@dataclass(frozen=True)
class TrainingPlan:
    status_patch: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    create_service: bool = False
    create_replicas: list[int] = field(default_factory=list)
    delete_pods: list[str] = field(default_factory=list)
    delete_object: bool = False
    requeue_after: float | None = None


def _label(pod: Mapping[str, Any], key: str) -> int:
    return int(((pod.get("metadata") or {}).get("labels") or {}).get(key, -1))


def _name(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"]["name"])


def _uid(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"].get("uid", ""))


class _Status:
    """Accumulates a status patch and Events while the planner walks the cases."""

    def __init__(self, status: Mapping[str, Any], generation: int, now: datetime) -> None:
        self.before = status
        self.conditions = Conditions(status.get("conditions") or [], generation, now)
        self.patch: dict[str, Any] = {"observedGeneration": generation}
        self.events: list[Event] = []
        self.generation = generation
        self.now = now

    def condition(self, type: str, state: ConditionStatus, reason: str, message: str) -> None:
        self.conditions.set(type, state, reason, message)

    def phase(self, phase: str, message: str, event: tuple[str, str] | None = None) -> None:
        """Enter `phase`; the Event is posted only on the transition."""
        if event and self.before.get("phase") != phase:
            self.events.append(Event(event[0], event[1], message))  # type: ignore[arg-type]
        self.patch.update(phase=phase, message=message, conditions=self.conditions.list)


def plan(observed: TrainingObserved) -> TrainingPlan:
    """The next move of a TrainingJob. The first pods are created only once the job that
    writes its starting model (`observed.producer`), if any, has succeeded."""
    spec, status, pods, now = observed.spec, observed.status, observed.pods, observed.now
    producer = observed.producer
    state = _Status(status, observed.generation, now)
    phase = observed.phase
    attempt = attempt_number(status)
    replicas = spec.parallelism.replicas

    if phase in TERMINAL:
        return _after_the_end(spec, status, pods, now)

    if spec.suspend:
        state.condition("Suspended", "True", "Suspended", "spec.suspend is true")
        state.condition("Running", "False", "Suspended", "pods removed while suspended")
        state.phase(
            "Suspended",
            "suspended: pods removed; set spec.suspend=false to resume from the last checkpoint",
            ("Normal", "Suspended"),
        )
        return TrainingPlan(state.patch, state.events, delete_pods=[_name(p) for p in pods])
    if phase == Phase.SUSPENDED:
        state.condition("Suspended", "False", "Resumed", "resumed from the last checkpoint")
        state.events.append(Event("Normal", "Resumed", "resuming from the last checkpoint"))

    started = status.get("startTime")
    requeue = seconds_left(spec.active_deadline_seconds, started, now)
    if requeue is not None and requeue <= 0:
        return _fail(
            state,
            spec,
            pods,
            Reason.DEADLINE_EXCEEDED,
            f"ran longer than activeDeadlineSeconds={spec.active_deadline_seconds}",
        )

    if not started and not pods:
        waiting = _wait_for_input(state, spec, producer)
        if waiting is not None:
            return waiting

    current = pods_of_attempt(pods, attempt)
    stale = [p for p in pods if _label(p, ATTEMPT_LABEL) != attempt]
    if stale:
        # The next attempt starts only once every pod of the previous one is gone.
        state.patch["replicaStatuses"] = _replica_statuses(replicas, current)
        return TrainingPlan(
            state.patch, state.events, delete_pods=[_name(p) for p in stale], requeue_after=requeue
        )

    failed = [p for p in current if phase_of(p) == "Failed"]
    if failed:
        recovered = _recover_in_place(state, observed, current, failed)
        if recovered is not None:
            return recovered
        decisive = _decisive(failed, status.get("recoveredPods") or [])
        return _on_failure(state, spec, status, decisive, current, producer)

    by_replica = {_label(p, REPLICA_LABEL): p for p in current}
    missing = [index for index in range(replicas) if index not in by_replica]
    # The pods this reconcile creates are named now, not in one more write when they appear.
    state.patch["replicaStatuses"] = _replica_statuses(
        replicas, current, {index: pod_name(observed.name, index) for index in missing}
    )
    if len(by_replica) == replicas and all(phase_of(p) == "Succeeded" for p in current):
        return _succeed(state, spec, by_replica[0], current)

    if missing and not started:
        state.patch["startTime"] = rfc3339(now)
    if missing and len(missing) == replicas:
        state.condition(
            "Created",
            "True",
            "PodsCreated",
            f"attempt {attempt}: {replicas} pods and the headless Service",
        )
    running = [p for p in current if phase_of(p) in ("Running", "Succeeded")]
    if len(running) == replicas:
        state.condition("Running", "True", "AllReplicasRunning", f"{replicas} replicas running")
        if attempt or status.get("recoveries"):
            state.condition(
                "Restarting",
                "False",
                "Resumed",
                f"attempt {attempt} running from the last checkpoint",
            )
        state.phase(
            "Running",
            f"{replicas}/{replicas} replicas running (attempt {attempt})",
            ("Normal", "Running"),
        )
    else:
        # The same words before and after the pods appear: one status write fewer per job.
        waiting = pending_message(current, False)
        state.condition(
            "Running",
            "False",
            "ReplicasPending",
            f"{len(running)}/{replicas} replicas running; {waiting}",
        )
        state.phase(
            "Restarting" if phase == Phase.RESTARTING else "Pending",
            f"{len(running)}/{replicas} replicas running; {waiting}",
        )
    return TrainingPlan(
        state.patch,
        state.events,
        create_service=not observed.service_exists,
        create_replicas=missing,
        requeue_after=requeue,
    )


def _wait_for_input(
    state: _Status, spec: TrainingJobSpec, producer: Producer | None
) -> TrainingPlan | None:
    """A plan that waits for (or fails with) the job producing the model; None: start."""
    started = gate(spec.model, producer)
    state.patch["input"] = started.input
    if started.failure is not None:
        return _fail(state, spec, [], Reason.INPUT_FAILED, started.failure)
    if started.waiting is None:
        return None
    state.condition("Created", "False", Reason.WAITING_FOR_INPUT, started.waiting)
    state.phase(Phase.PENDING, started.waiting, ("Normal", Reason.WAITING_FOR_INPUT))
    return TrainingPlan(state.patch, state.events, requeue_after=WAIT_SECONDS)


def _replica_statuses(
    replicas: int, pods: Sequence[Mapping[str, Any]], creating: dict[int, str] | None = None
) -> list[dict[str, Any]]:
    """One entry per replica: its pod and phase; `creating` are pods about to be created."""
    by_replica = {_label(p, REPLICA_LABEL): p for p in pods}
    statuses = []
    for index in range(replicas):
        pod = by_replica.get(index)
        entry: dict[str, Any] = {"index": index}
        if pod is not None:
            entry.update(pod=_name(pod), phase=phase_of(pod))
        elif creating and index in creating:
            entry.update(pod=creating[index], phase=Phase.PENDING)
        statuses.append(entry)
    return statuses


def pods_of_attempt(pods: Sequence[Mapping[str, Any]], attempt: int) -> list[Mapping[str, Any]]:
    """The pods of attempt `attempt` (its label), the others being left-overs."""
    return [p for p in pods if _label(p, ATTEMPT_LABEL) == attempt]


def attempt_number(status: Mapping[str, Any]) -> int:
    """The attempt the job's pods belong to: every gang restart starts the next one,
    whether it counts against backoffLimit (status.restarts) or not (disruptions)."""
    return int(status.get("restarts") or 0) + int(status.get("disruptions") or 0)


def recovers_in_place(spec: TrainingJobSpec, queued: bool) -> bool:
    """Whether a failed replica is recreated alone. Not under a Kueue queue: Kueue keeps
    a failed pod of an admitted group (its finalizer) until the group has a replacement,
    and the replacement, which has the failed pod's name, cannot exist before it is
    gone; the gang restart starts a new group instead."""
    return spec.recovery == "inPlace" and not queued


def _decisive(
    failed: Sequence[Mapping[str, Any]], counted: Sequence[str] = ()
) -> Mapping[str, Any]:
    """The failure that decides what happens to the attempt: a permanent error first,
    then the cluster stopping a pod, then replica 0's, then the lowest replica's; one
    already recovered from only when there is nothing else."""

    def rank(pod: Mapping[str, Any]) -> tuple[bool, bool, bool, int]:
        replica = _label(pod, REPLICA_LABEL)
        return (_uid(pod) in counted, not _permanent(pod), disruption(pod) is None, replica)

    return min(failed, key=rank)


def _permanent(pod: Mapping[str, Any]) -> bool:
    outcome = pod_outcome(pod)
    return outcome is not None and outcome.exit_code == PERMANENT


def _reason(pod: Mapping[str, Any]) -> str | None:
    outcome = pod_outcome(pod)
    return outcome.reason if outcome is not None else None


def _recover_in_place(
    state: _Status,
    observed: TrainingObserved,
    current: Sequence[Mapping[str, Any]],
    failed: Sequence[Mapping[str, Any]],
) -> TrainingPlan | None:
    """recovery inPlace: delete only the failed replicas, to be recreated once gone, while
    the others wait for them at the elastic rendezvous. None when the failure takes the
    gang path: replica 0 is not running (it hosts the rendezvous), a permanent error,
    the cluster stopped a pod, the rendezvous itself failed (closed by a replica that
    ended, or timed out: a replacement could not join it), backoffLimit is used up, or
    the job does not recover in place."""
    spec, status = observed.spec, observed.status
    if not recovers_in_place(spec, observed.queued):
        return None
    recoveries = int(status.get("recoveries") or 0)
    counted = set(status.get("recoveredPods") or [])
    fresh = [p for p in failed if _uid(p) not in counted]
    leader = next((p for p in current if _label(p, REPLICA_LABEL) == 0), None)
    leading = (
        leader is not None
        and phase_of(leader) == "Running"
        and not leader["metadata"].get("deletionTimestamp")
    )
    if not fresh and leading:
        # Already recovered from: the replacements follow once these are gone.
        return TrainingPlan(state.patch, state.events, delete_pods=[_name(p) for p in failed])
    gang = not leading or any(
        disruption(pod) is not None or _permanent(pod) or _reason(pod) == RENDEZVOUS_FAILED
        for pod in fresh
    )
    used = int(status.get("restarts") or 0) + recoveries
    if gang or used >= spec.backoff_limit:
        return None
    pod = _decisive(fresh)
    names = ", ".join(f"replica {_label(p, REPLICA_LABEL)}" for p in fresh)
    others = spec.parallelism.replicas - len(fresh)
    message = (
        f"{_cause(pod)}; recreating only {names}: the other {others} wait for it at the "
        f"rendezvous and every rank resumes from the last checkpoint "
        f"(restart {used + 1} of {spec.backoff_limit})"
    )
    state.patch["recoveries"] = recoveries + 1
    # Only pods still there need remembering: at most one entry per replica.
    state.patch["recoveredPods"] = [_uid(p) for p in failed]
    state.condition("Restarting", "True", Reason.REPLICA_RECOVERING, message)
    state.condition("Running", "False", Reason.REPLICA_RECOVERING, message)
    state.phase(Phase.RESTARTING, message)
    state.events.append(Event("Warning", "Recovering", message))
    return TrainingPlan(state.patch, state.events, delete_pods=[_name(p) for p in failed])


def _cause(pod: Mapping[str, Any]) -> str:
    """'replica 1 (job-worker-1) failed with exit code 137: <its last words>'."""
    outcome = pod_outcome(pod)
    code = outcome.exit_code if outcome else None
    said = f": {outcome.message}" if outcome and outcome.message else ""
    return f"replica {_label(pod, REPLICA_LABEL)} ({_name(pod)}) failed with exit code {code}{said}"


def _on_failure(
    state: _Status,
    spec: TrainingJobSpec,
    status: Mapping[str, Any],
    pod: Mapping[str, Any],
    current: Sequence[Mapping[str, Any]],
    producer: Producer | None,
) -> TrainingPlan:
    restarts = int(status.get("restarts") or 0)
    # In-place recoveries (recovery inPlace) share backoffLimit with gang restarts.
    used = restarts + int(status.get("recoveries") or 0)
    outcome = pod_outcome(pod)
    replica = _label(pod, REPLICA_LABEL)
    stopped = disruption(pod)
    if stopped is not None:
        # Preempted or evicted (by the scheduler, a drain or Kueue): not the workload's
        # failure, so it does not use up backoffLimit, as a Job's podFailurePolicy Ignore.
        disruptions = int(status.get("disruptions") or 0) + 1
        message = (
            f"replica {replica} ({_name(pod)}) was stopped by the cluster ({stopped}); "
            f"restarting all {spec.parallelism.replicas} replicas from the last checkpoint "
            f"(disruption {disruptions}, not counted against backoffLimit)"
        )
        state.patch["disruptions"] = disruptions
        return _restart(state, current, Reason.REPLICA_DISRUPTED, message)
    code = outcome.exit_code if outcome else None
    cause = _cause(pod)
    missing = outcome is not None and outcome.reason == Reason.MODEL_UNAVAILABLE
    if code == PERMANENT and missing and producer is not None and producer.phase != Phase.FAILED:
        # Applied together, the job may start before its producer is even seen: what it
        # found missing is on its way, so start over once it is there.
        state.patch["startTime"] = None
        waiting = _wait_for_input(state, spec, producer)
        assert waiting is not None
        return replace(waiting, delete_pods=[_name(p) for p in current])
    if code == PERMANENT:
        reason = (outcome.reason if outcome else None) or Reason.PERMANENT_ERROR
        return _fail(state, spec, current, reason, cause + " (a permanent error: not retried)")
    if used >= spec.backoff_limit:
        oom = outcome is not None and outcome.reason == OOM_KILLED
        return _fail(
            state,
            spec,
            current,
            OOM_KILLED if oom else Reason.BACKOFF_LIMIT_EXCEEDED,
            f"{cause}; all {spec.backoff_limit} restarts (backoffLimit) used",
        )
    message = (
        f"{cause}; restarting all {spec.parallelism.replicas} replicas from the last "
        f"checkpoint (restart {used + 1} of {spec.backoff_limit})"
    )
    state.patch["restarts"] = restarts + 1
    return _restart(state, current, Reason.REPLICA_FAILED, message)


def _restart(
    state: _Status, current: Sequence[Mapping[str, Any]], reason: str, message: str
) -> TrainingPlan:
    """Delete the attempt's pods; the next attempt starts once they are all gone."""
    state.condition("Restarting", "True", reason, message)
    state.condition("Running", "False", "Restarting", message)
    state.phase(Phase.RESTARTING, message)
    state.events.append(Event("Warning", "Restarting", message))
    return TrainingPlan(state.patch, state.events, delete_pods=[_name(p) for p in current])


def _fail(
    state: _Status,
    spec: TrainingJobSpec,
    pods: Sequence[Mapping[str, Any]],
    reason: str,
    message: str,
) -> TrainingPlan:
    state.condition("Running", "False", reason, message)
    state.condition("Failed", "True", reason, message)
    state.patch["completionTime"] = rfc3339(state.now)
    state.phase(Phase.FAILED, message, ("Warning", reason))
    doomed = _cleanup(spec, pods, every_running=True)
    return TrainingPlan(
        state.patch,
        state.events,
        delete_pods=doomed,
        requeue_after=seconds_left(
            spec.ttl_seconds_after_finished, state.patch["completionTime"], state.now
        ),
    )


def _succeed(
    state: _Status,
    spec: TrainingJobSpec,
    leader: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
) -> TrainingPlan:
    outcome = pod_outcome(leader)
    result = (outcome.result if outcome else None) or {}
    artifact = result.get("artifact")
    message = "trained"
    if result.get("steps") is not None:
        message += f" {result['steps']} steps"
    if result.get("finalLoss") is not None:
        message += f", final loss {result['finalLoss']:.4f}"
    if artifact:
        state.patch["result"] = artifact
        message += f", artifact {str(artifact.get('digest', ''))[:19]}"
    if isinstance(result.get("input"), dict):
        state.patch["input"] = {**(state.before.get("input") or {}), **result["input"]}
    evaluation = stored_form(TrainingJobStatus, "evaluation", result.get("evaluation"))
    if evaluation is not None:
        state.patch["evaluation"] = evaluation
        message += _evaluation_summary(evaluation)
    final = _final_progress(state.before.get("progress"), result)
    if final is not None:
        state.patch["progress"] = final
        if "step" in final:
            state.patch["progressSummary"] = f"{final['step']}/{final.get('totalSteps')}"
    state.condition("Running", "False", "Succeeded", "all replicas finished")
    state.condition("Succeeded", "True", "Trained", message)
    state.patch["completionTime"] = rfc3339(state.now)
    state.phase(Phase.SUCCEEDED, message, ("Normal", "Succeeded"))
    return TrainingPlan(
        state.patch,
        state.events,
        delete_pods=_cleanup(spec, pods, False),
        requeue_after=seconds_left(
            spec.ttl_seconds_after_finished, state.patch["completionTime"], state.now
        ),
    )


def _evaluation_summary(evaluation: Mapping[str, Any]) -> str:
    """', held-out accuracy 0.9125 after epoch 3 (stopped early)' for the message."""
    history = evaluation.get("history") or []
    metric = evaluation.get("metric")
    value = (history[-1].get("metrics") or {}).get(metric) if history else None
    if value is None:
        return ""
    summary = f", held-out {metric} {value:.4f} after epoch {history[-1].get('epoch')}"
    return summary + (" (stopped early)" if evaluation.get("stoppedEarly") else "")


def _final_progress(
    live: Mapping[str, Any] | None, result: Mapping[str, Any]
) -> dict[str, Any] | None:
    """status.progress at the end, from replica 0's result: the last step and loss, the
    whole run's samples/s, and the step this attempt resumed from. The artifact leaves
    these out (a resumed job publishes the same bytes as one that never stopped), so
    status is where they are kept; a value that would not fit the schema is left out."""
    figures = {
        "step": result.get("steps"),
        "totalSteps": result.get("totalSteps", result.get("steps")),
        "loss": result.get("finalLoss"),
        "samplesPerSecond": result.get("samplesPerSecond"),
        "resumedFromStep": result.get("resumedFromStep"),
    }
    kept = {key: stored_form(TrainingProgress, key, value) for key, value in figures.items()}
    final = {key: value for key, value in kept.items() if value is not None}
    return {**(live or {}), **final} if final else None


def _cleanup(
    spec: TrainingJobSpec, pods: Sequence[Mapping[str, Any]], every_running: bool
) -> list[str]:
    """Pods to delete when the job ends, per cleanPodPolicy."""
    if spec.clean_pod_policy == "All":
        return [_name(p) for p in pods]
    if spec.clean_pod_policy == "Running" or every_running:
        return [_name(p) for p in pods if phase_of(p) in ("Pending", "Running")]
    return []


def _after_the_end(
    spec: TrainingJobSpec,
    status: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: datetime,
) -> TrainingPlan:
    ending = end_of_life(spec.ttl_seconds_after_finished, status.get("completionTime"), now)
    if ending.delete:
        return TrainingPlan({}, delete_object=True)
    doomed = _cleanup(spec, pods, status.get("phase") == Phase.FAILED)
    return TrainingPlan({}, delete_pods=doomed, requeue_after=ending.delay)
