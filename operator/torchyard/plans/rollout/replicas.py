"""Traffic weights approximated by replica ratios. Pure.

Without a service mesh the model's Service spreads requests evenly over the ready pods
of every live version, so a version's share of the traffic is its share of the ready
pods (what Argo Rollouts does without traffic routing). A weight is therefore only as
fine as the replica counts allow: with 2 replicas a version gets 0, 50 or 100 percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaPlan:
    """Serving pods wanted for the version under rollout and for the one serving now."""

    candidate: int
    stable: int


def replicas_for(weight: int, replicas: int) -> int:
    """Pods the new version needs for `weight` percent: at least one for any traffic."""
    if weight <= 0:
        return 0
    return min(replicas, max(1, math.ceil(replicas * weight / 100)))


def replica_plan(
    weight: int, *, candidate_replicas: int, stable_replicas: int, candidate_ready: int
) -> ReplicaPlan:
    """Pods for both versions at `weight` percent for the new one, whose spec asks for
    `candidate_replicas` at full weight, while the serving one asks for `stable_replicas`.

    The serving version gives up only the share that the new version's *ready* pods
    already carry, so it never drops below what it serves before the new pods answer;
    rollback (weight 0) gives it back every pod at once. Below 100 percent it keeps at
    least one pod, so it still answers its share.
    """
    full = max(candidate_replicas, 1)
    wanted = replicas_for(weight, candidate_replicas)
    # The weight the new version can carry now: its ready fraction of full size, at most
    # the weight asked for. Integer arithmetic, so 3 x 1/3 is exactly 1.
    carried = min(weight * full, 100 * min(candidate_ready, wanted))
    stable = stable_replicas - (stable_replicas * carried) // (100 * full)
    if weight < 100:
        stable = max(stable, min(1, stable_replicas))
    return ReplicaPlan(candidate=wanted, stable=stable)


def effective_weight(candidate_ready: int, stable_ready: int) -> int:
    """The share of traffic, in percent, the new version really gets: its share of the
    ready pods behind the model's Service."""
    total = candidate_ready + stable_ready
    return 0 if total == 0 else round(100 * candidate_ready / total)
