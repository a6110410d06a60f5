"""The routing table the model's router gets, from the plan's weights. Pure.

Each version with a weight, or with ready pods, is listed with the `podIP:port` of its
ready serving pods; the candidate comes first (so sticky sessions move only towards it
as its weight rises, torchyard.router.table). The weights are the plan's desired ones
(status.desiredWeight): the router serves them exactly once the versions have ready
pods, and status.weight reports what it did serve (rollout.served).

While no version with a weight has a ready pod (a restored version still starting while
the one it replaces hands over), the versions that do have ready pods share the traffic
by their number of ready pods, as the Service alone would: the model keeps answering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torchyard.plans.rollout.model import ModelPlan, VersionObserved, pod_ready, views
from torchyard.plans.rollout.roles import VersionView, assign_roles
from torchyard.resources.serving import PORT
from torchyard.router.table import RouteTable, VersionRoute


@dataclass(frozen=True)
class Routing:
    table: RouteTable
    handing_over: bool
    """No version with a weight has a ready pod: the ready ones share by their pods."""


def route_table(versions: Sequence[VersionObserved], plan: ModelPlan, generation: int) -> Routing:
    roles = assign_roles(views(versions))
    candidate = roles.candidate.name if roles.candidate else None
    routes = []
    for version in versions:
        if version.spec is None:
            continue
        planned = plan.version(version.name)
        weight = planned.desired_weight if planned is not None else 0
        endpoints = tuple(_ready_endpoints(version.pods))
        if weight or endpoints:
            routes.append(
                (version.name == candidate, VersionRoute(version.spec.version, weight, endpoints))
            )
    ordered = [
        route for _, route in sorted(routes, key=lambda item: (not item[0], -item[1].weight))
    ]
    handing_over = not any(route.weight and route.endpoints for route in ordered)
    if handing_over:
        ordered = _by_ready_pods(ordered)
    table = RouteTable(
        generation=generation,
        versions=tuple(_unique(ordered)),
        sticky_header=_sticky_header(versions, roles.candidate or roles.stable),
    )
    return Routing(table, handing_over)


def _sticky_header(versions: Sequence[VersionObserved], leading: VersionView | None) -> str | None:
    """The header the version under rollout names (else the serving one's): the rollout
    under way is the one whose sessions the header keeps."""
    spec = next((v.spec for v in versions if leading and v.name == leading.name), None)
    return spec.rollout.sticky_header if spec is not None else None


def same_routes(one: RouteTable | None, other: RouteTable | None) -> bool:
    """Whether two tables route alike (their generations aside)."""
    if one is None or other is None:
        return one is other
    return one.versions == other.versions and one.sticky_header == other.sticky_header


def _ready_endpoints(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    found = []
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if ip and pod_ready(pod):  # never a terminating one
            found.append(f"[{ip}]:{PORT}" if ":" in ip else f"{ip}:{PORT}")
    return sorted(found)


def _by_ready_pods(routes: list[VersionRoute]) -> list[VersionRoute]:
    total = sum(len(route.endpoints) for route in routes)
    if not total:
        return routes
    return [
        VersionRoute(route.version, 100 * len(route.endpoints) // total, route.endpoints)
        for route in routes
    ]


def _unique(routes: list[VersionRoute]) -> list[VersionRoute]:
    """One entry per version string: two ModelVersions may name one version (the newer
    one is refused by admission, but both exist); the first listed wins."""
    seen: set[str] = set()
    unique = []
    for route in routes:
        if route.version not in seen:
            seen.add(route.version)
            unique.append(route)
    return unique
