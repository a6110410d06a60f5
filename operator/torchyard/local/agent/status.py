"""A pod's status as the kubelet reports it, computed from what the agent observed. Pure.

The agent keeps one `ContainerRecord` per container (what a container runtime would
report) and these functions turn them into `status`: phase (the kubelet's getPhase),
conditions with stable transition times, containerStatuses, and the termination message.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The kubelet's limits on what a termination message may carry.
MAX_MESSAGE_BYTES = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048


def rfc3339(epoch: float | None = None) -> str:
    """A timestamp as the API writes them (seconds, UTC)."""
    moment = datetime.fromtimestamp(epoch if epoch is not None else time.time(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRecord:
    """One container as a runtime reports it; `state` and `last_state` are the API's
    ContainerState dicts (`{"running": {...}}`, `{"waiting": {...}}`, ...)."""

    name: str
    image: str
    state: dict[str, Any] = field(default_factory=dict)
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""

    def status(self, image_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": image_id if self.container_id else "",
            "state": self.state or {"waiting": {"reason": "ContainerCreating"}},
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> dict[str, Any] | None:
        value = self.state.get("terminated")
        return value if isinstance(value, dict) else None


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"waiting": state}


def terminated(
    exit_code: int,
    started_at: str,
    finished_at: str,
    message: str = "",
    reason: str | None = None,
    container_id: str = "",
    signal: int | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": started_at,
        "finishedAt": finished_at,
    }
    if signal:
        state["signal"] = signal
    if message:
        state["message"] = message
    if container_id:
        state["containerID"] = container_id
    return {"terminated": state}


def exit_code_of(returncode: int) -> tuple[int, int | None]:
    """(exitCode, signal) from a Popen returncode: killed by signal N reads 128+N."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


# -- termination message -------------------------------------------------------------


def termination_message(
    file_bytes: bytes, policy: str | None, exit_code: int, log_tail: bytes
) -> str:
    """What the kubelet puts in `state.terminated.message`.

    The file at terminationMessagePath wins (up to 4 KiB); with FallbackToLogsOnError an
    empty file on a failed exit reads the last 80 lines (up to 2 KiB) of the log.
    """
    text = file_bytes[:MAX_MESSAGE_BYTES].decode(errors="replace")
    if text or policy != "FallbackToLogsOnError" or exit_code == 0:
        return text
    lines = log_tail.splitlines(keepends=True)[-FALLBACK_LOG_LINES:]
    return b"".join(lines)[-FALLBACK_LOG_BYTES:].decode(errors="replace")


# -- phase ---------------------------------------------------------------------------


def init_done(init: Sequence[ContainerRecord]) -> bool:
    return all((c.terminated or {}).get("exitCode") == 0 for c in init)


def init_failed(init: Sequence[ContainerRecord]) -> bool:
    """An init container failed for good (restartPolicy Never)."""
    for c in init:
        last = c.terminated or (
            (c.last_state.get("terminated") or {}) if "waiting" in c.state else {}
        )
        if last and last.get("exitCode", 0) != 0:
            return True
    return False


def pod_phase(
    restart_policy: str,
    init: Sequence[ContainerRecord],
    containers: Sequence[ContainerRecord],
    terminal: bool = False,
) -> str:
    """The kubelet's getPhase; `terminal` when the pod is being shut down for good
    (deleted, deadline exceeded), so that containers that will not restart count as
    done whatever the policy."""
    if restart_policy == "Never" and init_failed(init):
        return "Failed"
    if not init_done(init):
        if terminal and any(c.terminated or c.last_state for c in init):
            return "Failed"
        return "Pending"
    running = waiting_ = stopped = succeeded = 0
    for c in containers:
        if c.running:
            running += 1
        elif c.terminated is not None:
            stopped += 1
            succeeded += c.terminated.get("exitCode") == 0
        elif c.last_state.get("terminated"):
            stopped += 1
        else:
            waiting_ += 1
    if terminal and running == 0:
        return "Succeeded" if stopped == succeeded and waiting_ == 0 and stopped else "Failed"
    if waiting_:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if restart_policy == "OnFailure" else "Failed"
    return "Pending"


# -- conditions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str = ""
    message: str = ""


def pod_conditions(
    phase: str,
    sandbox_ready: bool,
    init: Sequence[ContainerRecord],
    containers: Sequence[ContainerRecord],
    readiness_gates: Sequence[str] = (),
    current: Sequence[Mapping[str, Any]] = (),
) -> list[Condition]:
    """The conditions the kubelet owns (PodScheduled belongs to the scheduler)."""
    finished = phase in ("Succeeded", "Failed")
    conds = [Condition("PodReadyToStartContainers", sandbox_ready and not finished)]
    incomplete = [c.name for c in init if (c.terminated or {}).get("exitCode") != 0]
    if finished and phase == "Succeeded":
        conds.append(Condition("Initialized", True, "PodCompleted"))
    elif incomplete:
        conds.append(
            Condition(
                "Initialized",
                False,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]",
            )
        )
    else:
        conds.append(Condition("Initialized", True))
    unready = [c.name for c in containers if not c.ready]
    if finished:
        ready = Condition("ContainersReady", False, "PodCompleted")
    elif incomplete:
        ready = Condition(
            "ContainersReady",
            False,
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(c.name for c in containers)}]",
        )
    elif unready:
        ready = Condition(
            "ContainersReady",
            False,
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    else:
        ready = Condition("ContainersReady", True)
    conds.append(ready)
    gate_status = {c.get("type"): c.get("status") == "True" for c in current}
    missing_gates = [g for g in readiness_gates if not gate_status.get(g)]
    if ready.status and missing_gates:
        conds.append(
            Condition(
                "Ready",
                False,
                "ReadinessGatesNotReady",
                f"corresponding condition of pod readiness gate {missing_gates[0]!r} "
                "does not exist or is not True",
            )
        )
    else:
        conds.append(Condition("Ready", ready.status, ready.reason, ready.message))
    return conds


def condition_dicts(
    conds: Sequence[Condition], current: Sequence[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    """API conditions; lastTransitionTime moves only when the status changes."""
    before = {c.get("type"): c for c in current}
    out = []
    for cond in conds:
        status = "True" if cond.status else "False"
        previous = before.get(cond.type) or {}
        since = previous.get("lastTransitionTime") if previous.get("status") == status else None
        # reason and message are always present, None when empty: the patch is a
        # strategic merge, where a missing key would keep an outdated message.
        out.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason or None,
                "message": cond.message or None,
                "lastProbeTime": None,
                "lastTransitionTime": since or now,
            }
        )
    return out


# -- the whole status ----------------------------------------------------------------


@dataclass
class PodView:
    """Everything the agent knows about one pod at one moment."""

    init: list[ContainerRecord]
    containers: list[ContainerRecord]
    sandbox_ready: bool = False
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str = ""
    terminal: bool = False
    # Set when the pod failed as a whole (e.g. DeadlineExceeded).
    reason: str = ""
    message: str = ""
    image_id: dict[str, str] = field(default_factory=dict)


def pod_status(pod: Mapping[str, Any], view: PodView, now: str) -> dict[str, Any]:
    """The `status` to patch: phase, conditions, IPs, containerStatuses."""
    spec = pod.get("spec") or {}
    current = (pod.get("status") or {}).get("conditions") or []
    phase = pod_phase(
        spec.get("restartPolicy") or "Always", view.init, view.containers, view.terminal
    )
    if view.reason and view.terminal:
        phase = "Failed"
    gates = [g["conditionType"] for g in spec.get("readinessGates") or []]
    conds = pod_conditions(phase, view.sandbox_ready, view.init, view.containers, gates, current)
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": condition_dicts(conds, current, now),
        "hostIP": view.host_ip or None,
        "hostIPs": [{"ip": view.host_ip}] if view.host_ip else None,
        "podIP": view.pod_ip or None,
        "podIPs": [{"ip": view.pod_ip}] if view.pod_ip else None,
        "startTime": view.start_time or None,
        "containerStatuses": [c.status(view.image_id.get(c.image, "")) for c in view.containers],
    }
    if view.init:
        status["initContainerStatuses"] = [
            c.status(view.image_id.get(c.image, "")) for c in view.init
        ]
    if view.reason:
        status["reason"] = view.reason
        status["message"] = view.message
    return status
