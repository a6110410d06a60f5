"""Kueue's conventions on the children, so that a queue admits a job as a whole. Pure.

A job opts in with Kueue's own label, `kueue.x-k8s.io/queue-name`, on the TrainingJob
or CompressionJob (and optionally `kueue.x-k8s.io/priority-class`). The operator passes
them on where Kueue looks:

- a CompressionJob's child is a batch/v1 Job, which Kueue manages natively: its webhook
  creates the Job suspended and Kueue unsuspends it when the queue admits it;
- a TrainingJob's replicas are plain pods, one pod group per attempt (Kueue's "plain pod
  group" integration): Kueue's webhook gates each pod (`kueue.x-k8s.io/admission`) and
  lifts the gates of all of them together once its queue has quota for every replica,
  so no replica runs while the gang cannot. `retriable-in-group: "false"` tells Kueue
  that a failed replica ends the group: the operator's gang restart makes a new group
  (the next attempt), which is admitted afresh.

Kueue never creates or deletes torchyard's pods; the operator stays their only
controller. Without Kueue the labels are inert and the pods start at once.
"""

from __future__ import annotations

from collections.abc import Mapping

QUEUE_NAME = "kueue.x-k8s.io/queue-name"
PRIORITY_CLASS = "kueue.x-k8s.io/priority-class"
POD_GROUP_NAME = "kueue.x-k8s.io/pod-group-name"
POD_GROUP_TOTAL_COUNT = "kueue.x-k8s.io/pod-group-total-count"
RETRIABLE_IN_GROUP = "kueue.x-k8s.io/retriable-in-group"
ADMISSION_GATE = "kueue.x-k8s.io/admission"

_PASSED_ON = (QUEUE_NAME, PRIORITY_CLASS)


def queue_labels(owner_labels: Mapping[str, str] | None) -> dict[str, str]:
    """Kueue's labels of the owner that its children carry too (none: not queued)."""
    labels = owner_labels or {}
    return {key: labels[key] for key in _PASSED_ON if labels.get(key)}


def pod_group(
    owner_labels: Mapping[str, str] | None, job: str, attempt: int, replicas: int
) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations that make one attempt's replicas one Kueue pod group;
    nothing when the job names no queue. TrainingJob names (at most 50 characters) keep
    the group name a valid label value."""
    labels = queue_labels(owner_labels)
    if QUEUE_NAME not in labels:
        return {}, {}
    labels[POD_GROUP_NAME] = f"{job}-attempt-{attempt}"
    annotations = {POD_GROUP_TOTAL_COUNT: str(replicas), RETRIABLE_IN_GROUP: "false"}
    return labels, annotations
