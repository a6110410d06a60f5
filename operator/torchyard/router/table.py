"""The routing table and the choice of a backend per request: pure, no I/O.

A table lists the model's versions, each with a weight (percent) and the addresses of its
ready serving pods. Requests go to versions by smooth weighted round robin (nginx's
algorithm): after every `sum of weights` picks each version has had exactly its weight,
and picks are spread evenly in between (10 % is every tenth request, not the first ten
of a hundred). A random choice would not do: at 50 % over 2,000 requests its standard
deviation is 1.1 points, so a ±2 point goal fails in about 7 % of runs.

Sticky sessions: a request with the table's sticky header goes by a hash of its value,
so one session always reaches the same version while the weights stand. The versions
own consecutive ranges of 10,000 buckets in the table's order, the candidate first: a
rising weight moves sessions only from the stable version to the candidate, and a
rollback (weight 0) moves all of them back.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BUCKETS = 10_000
MAX_ENDPOINTS = 1_000


class TableError(ValueError):
    """A routing table the router refuses (the message names the field)."""


@dataclass(frozen=True)
class VersionRoute:
    """One version of the model: its share of requests and where its ready pods listen."""

    version: str
    weight: int
    """Percent of the requests, 0 to 100."""
    endpoints: tuple[str, ...]
    """host:port of each ready serving pod."""

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "weight": self.weight, "endpoints": list(self.endpoints)}


@dataclass(frozen=True)
class RouteTable:
    """What the operator pushes: the versions in order (the candidate first), a
    generation that only grows, and the header that makes a session sticky (or None)."""

    generation: int
    versions: tuple[VersionRoute, ...]
    sticky_header: str | None = None

    @property
    def routable(self) -> tuple[VersionRoute, ...]:
        """The versions that take requests: a weight and at least one ready endpoint."""
        return tuple(route for route in self.versions if route.weight > 0 and route.endpoints)

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "versions": [route.to_json() for route in self.versions],
            "stickyHeader": self.sticky_header,
        }

    @classmethod
    def from_json(cls, data: Any) -> RouteTable:
        """Checked field by field: a table that would route wrongly is refused whole."""
        if not isinstance(data, Mapping):
            raise TableError("the routing table must be a JSON object")
        generation = data.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise TableError("generation must be a non-negative integer")
        versions = data.get("versions")
        if not isinstance(versions, list):
            raise TableError("versions must be a list")
        routes = tuple(_route(index, item) for index, item in enumerate(versions))
        names = [route.version for route in routes]
        if len(set(names)) != len(names):
            raise TableError(f"versions name a version twice: {names}")
        total = sum(route.weight for route in routes)
        if total > 100:
            raise TableError(f"the versions' weights add up to {total}; at most 100")
        sticky = data.get("stickyHeader")
        if sticky is not None and (not isinstance(sticky, str) or not sticky.strip()):
            raise TableError("stickyHeader must be a header name or null")
        return cls(generation=generation, versions=routes, sticky_header=sticky)


def _route(index: int, item: Any) -> VersionRoute:
    where = f"versions[{index}]"
    if not isinstance(item, Mapping):
        raise TableError(f"{where} must be an object")
    version, weight, endpoints = item.get("version"), item.get("weight"), item.get("endpoints")
    if not isinstance(version, str) or not version:
        raise TableError(f"{where}.version must be a non-empty string")
    if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
        raise TableError(f"{where}.weight must be an integer from 0 to 100")
    if not isinstance(endpoints, list) or len(endpoints) > MAX_ENDPOINTS:
        raise TableError(f"{where}.endpoints must be a list of at most {MAX_ENDPOINTS}")
    for endpoint in endpoints:
        if not _is_endpoint(endpoint):
            raise TableError(f"{where}.endpoints: {endpoint!r} is not IP:port")
    return VersionRoute(version=version, weight=weight, endpoints=tuple(endpoints))


def _is_endpoint(value: Any) -> bool:
    """An IP address and a port (pod IPs: never a name, which could lead anywhere)."""
    if not isinstance(value, str):
        return False
    host, _, port = value.rpartition(":")
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return port.isdigit() and 0 < int(port) < 65536


class Picker:
    """Chooses a version and one of its endpoints per request, for one table.

    A new table carries on where the previous picker was (`after`): each version keeps
    its running score, so pushes between requests (new endpoints, a new generation) do
    not start the round again, which would favour the first version each time."""

    def __init__(self, table: RouteTable, after: Picker | None = None) -> None:
        self.table = table
        routable = table.routable
        self._routes = {route.version: route for route in routable}
        earlier = after._current if after is not None else {}
        self._current = {version: earlier.get(version, 0) for version in self._routes}
        self._total = sum(route.weight for route in routable)
        self._turn = itertools.count()

    @property
    def empty(self) -> bool:
        return not self._routes

    def pick(self, session: str | None = None) -> VersionRoute:
        """The version for the next request (a session's, when it names one)."""
        if self.empty:
            raise LookupError("no version has a weight and a ready endpoint")
        if session is not None:
            return self._by_session(session)
        # Smooth weighted round robin: every version gains its weight, the one furthest
        # ahead is chosen and pays back the total.
        for version in self._current:
            self._current[version] += self._routes[version].weight
        chosen = max(self._current, key=self._current.__getitem__)
        self._current[chosen] -= self._total
        return self._routes[chosen]

    def endpoints(self, route: VersionRoute) -> list[str]:
        """The version's endpoints in the order this request tries them: round robin over
        requests, each request starting one further and going round once (its own list,
        so requests that wait on each other never skip an endpoint)."""
        start = next(self._turn) % len(route.endpoints)
        return [*route.endpoints[start:], *route.endpoints[:start]]

    def steadiest(self) -> VersionRoute:
        """The heaviest version that takes requests, for requests that are not weighed
        (health, metadata): they neither move the round nor count as served."""
        if self.empty:
            raise LookupError("no version has a weight and a ready endpoint")
        return max(self._routes.values(), key=lambda route: route.weight)

    def _by_session(self, session: str) -> VersionRoute:
        bucket = session_bucket(session)
        # Ranges over the table's weights as written (not only the routable ones), so a
        # version with no ready pod for a moment does not reshuffle everybody else.
        start = 0
        for route in self.table.versions:
            end = start + route.weight * BUCKETS // 100
            if start <= bucket < end and route.version in self._routes:
                return route
            start = end
        # The session's range belongs to a version that cannot take it now, or to no
        # version (weights under 100): the smooth choice, still exact overall.
        return self.pick()


def session_bucket(session: str) -> int:
    """0 to BUCKETS - 1, the same for a session in every router process."""
    digest = hashlib.blake2b(session.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS
