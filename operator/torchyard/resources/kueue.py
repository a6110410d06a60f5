"""Kueue's conventions on the children, so that a queue admits a job as a whole. Pure.

A job opts in with Kueue's own label, `kueue.x-k8s.io/queue-name`, on the TrainingJob
or CompressionJob (and optionally `kueue.x-k8s.io/priority-class`). The operator passes
them on where Kueue looks:

- a CompressionJob's child is a batch/v1 Job, which Kueue manages natively: its webhook
  creates the Job suspended and Kueue unsuspends it when the queue admits it;
- a TrainingJob's replicas are plain pods (Kueue's "plain pod group" integration), one
  pod group per set of replicas started together. Kueue's webhook gates each pod
  (`kueue.x-k8s.io/admission`) and Kueue lifts the gates of all of them at once when
  its queue has quota for every replica: none starts on a share of the quota.
  `retriable-in-group: "false"` tells Kueue that a failed replica ends the group: the
  operator's gang restart starts a new group, admitted afresh.

Kueue does not create replicas; it deletes them when it preempts or evicts the job
(then the operator starts the gang again, not counted against backoffLimit), and holds
its `kueue.x-k8s.io/managed` finalizer on them. Without Kueue the labels do nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

QUEUE_NAME = "kueue.x-k8s.io/queue-name"
PRIORITY_CLASS = "kueue.x-k8s.io/priority-class"
POD_GROUP_NAME = "kueue.x-k8s.io/pod-group-name"
POD_GROUP_TOTAL_COUNT = "kueue.x-k8s.io/pod-group-total-count"
RETRIABLE_IN_GROUP = "kueue.x-k8s.io/retriable-in-group"
ADMISSION_GATE = "kueue.x-k8s.io/admission"

_PASSED_ON = (QUEUE_NAME, PRIORITY_CLASS)
QUEUED_KINDS = ("TrainingJob", "CompressionJob")
"""The kinds a queue admits. A ModelVersion's serving pods are not queued: a label on it
is not passed on (kopf.adopt gives children their owner's labels)."""


def queue_labels(owner_labels: Mapping[str, str] | None) -> dict[str, str]:
    """Kueue's labels of the owner that its children carry too (none: not queued)."""
    labels = owner_labels or {}
    return {key: labels[key] for key in _PASSED_ON if labels.get(key)}


@dataclass(frozen=True)
class PodGroup:
    """What makes a set of replicas one Kueue pod group."""

    labels: dict[str, str]
    annotations: dict[str, str]


def group_name(job: str, existing: Sequence[Mapping[str, Any]]) -> str:
    """The pod group of the replicas about to be created: that of the attempt's replicas
    that exist (a recreated replica joins them), else a new name. A name is never used
    for a second set of pods: Kueue keeps a finished group's Workload a while, and new
    pods under its name would join it and never be admitted (after a suspension, or a
    job deleted and applied again). TrainingJob names (at most 50 characters) keep it a
    valid label value."""
    for pod in existing:
        name = ((pod.get("metadata") or {}).get("labels") or {}).get(POD_GROUP_NAME)
        if name:
            return str(name)
    return f"{job}-{secrets.token_hex(4)}"


def pod_group(owner_labels: Mapping[str, str] | None, name: str, replicas: int) -> PodGroup | None:
    """The pod group `name` of `replicas` pods; None when the job names no queue."""
    labels = queue_labels(owner_labels)
    if QUEUE_NAME not in labels:
        return None
    labels[POD_GROUP_NAME] = name
    annotations = {POD_GROUP_TOTAL_COUNT: str(replicas), RETRIABLE_IN_GROUP: "false"}
    return PodGroup(labels, annotations)
