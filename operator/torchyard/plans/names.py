"""Phases and condition reasons of the job kinds, named once (kopf's Reason, Kueue's
jobframework/events.go): the planners, the controllers and the tests use these names,
and a user reads their values in `status.phase` and `kubectl describe`.

Plain string constants, not an Enum: status patches are dumped as JSON and YAML as they
are, and a member of a str Enum is not a str to every dumper.
"""

from __future__ import annotations

from typing import Final


class Phase:
    """status.phase of a TrainingJob or CompressionJob (api.training.TrainingPhase,
    api.compression.JobPhase)."""

    PENDING: Final = "Pending"
    RUNNING: Final = "Running"
    RESTARTING: Final = "Restarting"
    SUSPENDED: Final = "Suspended"
    SUCCEEDED: Final = "Succeeded"
    FAILED: Final = "Failed"


TERMINAL: Final = (Phase.SUCCEEDED, Phase.FAILED)
"""Phases a job never leaves."""


class Reason:
    """Reasons of the job kinds' conditions and Events that more than one place names."""

    WAITING_FOR_INPUT: Final = "WaitingForInput"
    INPUT_FAILED: Final = "InputFailed"
    DEADLINE_EXCEEDED: Final = "DeadlineExceeded"
    BACKOFF_LIMIT_EXCEEDED: Final = "BackoffLimitExceeded"
    PERMANENT_ERROR: Final = "PermanentError"
    MODEL_NOT_FOUND: Final = "ModelNotFound"
    """The compression workload's, when the model is not at its URI (workloads.compress)."""
    MODEL_UNAVAILABLE: Final = "ModelUnavailable"
    """The training workload's, when the starting model cannot be loaded."""
    REPLICA_FAILED: Final = "ReplicaFailed"
    """A training replica failed: a gang restart counted against backoffLimit."""
    REPLICA_RECOVERING: Final = "ReplicaRecovering"
    """A training replica failed and is recreated alone (recovery inPlace), counted
    against backoffLimit."""
    REPLICA_DISRUPTED: Final = "ReplicaDisrupted"
    """The cluster stopped a training replica (preemption, eviction, Kueue): a gang
    restart not counted against backoffLimit."""
