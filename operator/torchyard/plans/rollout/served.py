"""The share of a model's inference requests each version really served: status.weight.
Pure.

The model's router pods count each answer by the version that gave it
(torchyard.router.metrics); the controller reads their counters when the routing table's
weights change (the window's start) and then while a rollout is under way. A version's
served share is its part of the answers since the start, once at least MIN_ANSWERS were
given; before that, and without a router, status reports the weight asked for. A router
pod whose counters went down restarted: all it counts is in the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torchyard.plans.rollout.analysis import MAX_VALUE, MetricsError, Unreadable, sample
from torchyard.router.metrics import ROUTED
from torchyard.router.table import RouteTable

MIN_ANSWERS = 20
"""Answers in a window before a share is reported: below it, one request is 5 points."""

Answers = Mapping[str, float]
"""Inference requests a router pod answered, by the version that answered."""


def read_answers(text: str) -> dict[str, float] | Unreadable:
    """A router pod's answers by version, from its /metrics; Unreadable if not plausible."""
    answers: dict[str, float] = {}
    try:
        for line in text.splitlines():
            if not line.startswith(ROUTED + "{"):
                continue
            _, labels, value = sample(line)
            version = labels.get("version", "")
            answers[version] = answers.get(version, 0.0) + value
    except MetricsError as error:
        return Unreadable(str(error))
    if sum(answers.values()) > MAX_VALUE:
        return Unreadable("router counters sum beyond 2^53")
    return answers


def weights_of(table: RouteTable) -> tuple[tuple[str, int], ...]:
    """What a served window measures against: the versions that take requests, and their
    weights. A change (a new step, a rollback, a candidate's first ready pod) starts a new
    window."""
    return tuple((route.version, route.weight) for route in table.routable)


@dataclass(frozen=True)
class ServedWindow:
    weights: tuple[tuple[str, int], ...]
    start: Mapping[str, Answers | None]
    """Each router pod's answers when the window began, by pod (uid and container restarts,
    so a restarted container is a new pod that counts from zero); None for a pod whose
    answers could not be read then: it is left out of the window."""

    def shares(self, current: Mapping[str, Answers]) -> dict[str, float] | None:
        """Percent of the window's answers per version; None below MIN_ANSWERS. A pod not
        in `start` began after the window did: all its answers are the window's."""
        since: dict[str, float] = {}
        for pod, answers in current.items():
            if pod in self.start and self.start[pod] is None:
                continue
            earlier = self.start.get(pod) or {}
            restarted = any(answers.get(v, 0.0) < n for v, n in earlier.items())
            for version, count in answers.items():
                gained = count if restarted else count - earlier.get(version, 0.0)
                since[version] = since.get(version, 0.0) + gained
        total = sum(since.values())
        if total < MIN_ANSWERS:
            return None
        return {version: 100.0 * count / total for version, count in since.items()}
