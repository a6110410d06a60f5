"""What pods say about themselves: phase, termination message, why they wait. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torchyard.resources.kueue import ADMISSION_GATE, QUEUE_NAME


@dataclass(frozen=True)
class PodOutcome:
    """What one finished pod said through its termination message."""

    exit_code: int | None
    reason: str | None
    message: str
    result: dict[str, Any] | None


# Conditions the cluster sets on a pod it is about to stop for reasons of its own:
# preemption, eviction, node drain (Kubernetes) and preemption or eviction by Kueue.
DISRUPTION_CONDITIONS = ("DisruptionTarget", "TerminationTarget")


def disruption(pod: Mapping[str, Any]) -> str | None:
    """Why the cluster stopped the pod (`reason: message`), or None when it did not:
    such a failure is not the workload's, as a Job's podFailurePolicy Ignore has it."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") in DISRUPTION_CONDITIONS and cond.get("status") == "True":
            said = str(cond.get("message") or "").strip()
            reason = str(cond.get("reason") or cond["type"])
            return f"{reason}: {said}" if said else reason
    return None


def pod_outcome(pod: Mapping[str, Any]) -> PodOutcome | None:
    """The terminated state of the pod's worker container, if it has ended."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if not terminated:
            continue
        message = terminated.get("message") or ""
        result = None
        try:
            parsed = json.loads(message)
            result = parsed if isinstance(parsed, dict) else None
        except ValueError:
            pass
        reason = (result or {}).get("reason") or terminated.get("reason")
        text = (result or {}).get("message") or message.strip()[-1000:]
        if reason == OOM_KILLED and not text:
            text = _oom_message(pod, container.get("name"))
        return PodOutcome(terminated.get("exitCode"), reason, text, result)
    return None


OOM_KILLED = "OOMKilled"
"""The kubelet's reason for a container the kernel killed at its memory limit."""


def _oom_message(pod: Mapping[str, Any], container: str | None) -> str:
    limit = None
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
    over = f"its memory limit of {limit}" if limit else "its memory limit"
    return (
        f"OOMKilled: the worker needed more memory than {over}; raise spec.resources.limits.memory"
    )


def latest_outcome(pods: Sequence[Mapping[str, Any]], phase: str) -> PodOutcome | None:
    ended = [p for p in pods if (p.get("status") or {}).get("phase") == phase]
    ended.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
    for pod in reversed(ended):
        outcome = pod_outcome(pod)
        if outcome is not None:
            return outcome
    return None


def gated_message(pod: Mapping[str, Any]) -> str | None:
    """Why a pod with scheduling gates waits, or None when it has none. Kueue's gate
    is lifted when the queue admits the whole job; any other gate is some controller's."""
    gates = [gate.get("name", "") for gate in (pod.get("spec") or {}).get("schedulingGates") or []]
    if not gates:
        return None
    name = pod["metadata"]["name"]
    if ADMISSION_GATE in gates:
        queue = ((pod.get("metadata") or {}).get("labels") or {}).get(QUEUE_NAME, "")
        return (
            f"pod {name} waits for Kueue to admit the job from queue {queue!r}: every "
            "replica starts together once the queue has quota for all of them "
            "(kubectl get workloads shows where it stands)"
        )
    return f"pod {name} waits for its scheduling gates: {', '.join(gates)}"


def pending_message(pods: Sequence[Mapping[str, Any]], retrying: bool) -> str:
    for pod in pods:
        gated = gated_message(pod)
        if gated is not None:
            return gated
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason"):
                detail = waiting.get("message", "")
                return f"pod {pod['metadata']['name']}: {waiting['reason']}: {detail}".strip()
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return f"pod {pod['metadata']['name']} is not scheduled: {cond.get('message', '')}"
    return "retrying after a failed attempt" if retrying else "waiting for the pod to start"


def phase_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")
