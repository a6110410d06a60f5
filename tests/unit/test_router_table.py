"""The router's choice of version per request (torchyard.router.table): exact shares,
sticky sessions that move only as the weights move, and tables refused field by field."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from torchyard.router.table import (
    BUCKETS,
    Picker,
    RouteTable,
    TableError,
    VersionRoute,
    session_bucket,
)


def table(candidate: int, *, stable_endpoints: int = 2, sticky: str | None = None) -> RouteTable:
    return RouteTable(
        generation=1,
        versions=(
            VersionRoute("2", candidate, ("10.0.0.3:8080",)),
            VersionRoute(
                "1", 100 - candidate, tuple(f"10.0.0.{i}:8080" for i in range(stable_endpoints))
            ),
        ),
        sticky_header=sticky,
    )


@pytest.mark.parametrize("weight", [1, 10, 25, 33, 50, 99])
def test_every_hundred_requests_hold_exactly_the_weights(weight):
    picker = Picker(table(weight))
    picks = [picker.pick().version for _ in range(2000)]
    for start in range(0, 2000, 100):
        assert Counter(picks[start : start + 100])["2"] == weight
    # Spread evenly, not in a block: no 100 - weight + 1 stable answers in a row at 10 %.
    longest = max(len(list(run)) for key, run in itertools.groupby(picks) if key == "1")
    assert longest <= -(-(100 - weight) // weight)


def test_each_request_starts_one_endpoint_further_and_tries_every_one():
    picker = Picker(table(0, stable_endpoints=3))
    route = picker.pick()
    orders = [picker.endpoints(route) for _ in range(4)]
    assert [order[0] for order in orders] == [f"10.0.0.{i}:8080" for i in (0, 1, 2, 0)]
    assert all(sorted(order) == sorted(route.endpoints) for order in orders)


def test_a_new_table_carries_the_round_on():
    """Pushes between requests (a new generation, new endpoints) keep each version's
    running score: restarting it would favour the first version after every push."""
    picker = Picker(table(10))
    picks = []
    for index in range(1000):
        if index % 3 == 0:
            pushed = table(10)
            picker = Picker(RouteTable(index, pushed.versions), after=picker)
        picks.append(picker.pick().version)
    assert Counter(picks)["2"] == 100


def test_requests_that_are_not_weighed_go_to_the_heaviest_version():
    assert Picker(table(25)).steadiest().version == "1"
    assert Picker(table(75)).steadiest().version == "2"


def test_a_version_without_ready_endpoints_or_weight_takes_nothing():
    no_pods = RouteTable(1, (VersionRoute("2", 25, ()), VersionRoute("1", 75, ("a:1",))))
    assert {Picker(no_pods).pick().version for _ in range(100)} == {"1"}
    nothing = RouteTable(1, (VersionRoute("1", 0, ("a:1",)),))
    assert Picker(nothing).empty
    with pytest.raises(LookupError):
        Picker(nothing).pick()


def test_a_session_sticks_to_one_version():
    picker = Picker(table(50, sticky="X-Session"))
    for session in (f"user-{i}" for i in range(200)):
        assert len({picker.pick(session).version for _ in range(5)}) == 1


def test_sessions_move_only_towards_the_candidate_as_its_weight_rises():
    sessions = [f"user-{i}" for i in range(2000)]
    before = {s: Picker(table(10)).pick(s).version for s in sessions}
    after = {s: Picker(table(25)).pick(s).version for s in sessions}
    assert all(after[s] == "2" for s in sessions if before[s] == "2")
    share = Counter(after.values())["2"] / len(sessions)
    assert 0.22 < share < 0.28  # a hash: close to the weight, not exact
    rolled_back = {s: Picker(table(0)).pick(s).version for s in sessions}
    assert set(rolled_back.values()) == {"1"}


def test_the_bucket_of_a_session_is_the_same_everywhere():
    assert session_bucket("user-7") == session_bucket("user-7")
    assert 0 <= session_bucket("") < BUCKETS


def test_a_table_round_trips_through_json():
    written = table(25, sticky="X-Session")
    assert RouteTable.from_json(written.to_json()) == written


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"generation": -1}, "generation"),
        ({"generation": True}, "generation"),
        ({"versions": {}}, "versions must be a list"),
        ({"versions": [{"version": "1", "weight": 101, "endpoints": []}]}, "weight"),
        ({"versions": [{"version": "", "weight": 1, "endpoints": []}]}, "version must"),
        ({"versions": [{"version": "1", "weight": 1, "endpoints": ["a"]}]}, "IP:port"),
        ({"versions": [{"version": "1", "weight": 1, "endpoints": ["10.0.0.1:0"]}]}, "IP:port"),
        ({"versions": [{"version": "1", "weight": 1, "endpoints": ["a/b:80"]}]}, "IP:port"),
        # A name could lead anywhere (and read the model's traffic): pod IPs only.
        (
            {"versions": [{"version": "1", "weight": 1, "endpoints": ["evil.example:80"]}]},
            "IP:port",
        ),
        (
            {"versions": [{"version": "1", "weight": 60, "endpoints": []}] * 2},
            "twice",
        ),
        (
            {
                "versions": [
                    {"version": "1", "weight": 60, "endpoints": []},
                    {"version": "2", "weight": 60, "endpoints": []},
                ]
            },
            "add up to 120",
        ),
        ({"stickyHeader": " "}, "stickyHeader"),
    ],
)
def test_a_bad_table_is_refused_naming_the_field(change, words):
    with pytest.raises(TableError, match=words):
        RouteTable.from_json({**table(25).to_json(), **change})


def test_the_router_lets_go_of_idle_backend_connections_before_the_pods_close_them():
    """A pod closes a connection idle for header_timeout_s; a router that reused one at
    that moment would fail the request with a 502 it cannot safely send again."""
    from torchyard.router.proxy import BACKEND_IDLE_SECONDS
    from torchyard.workloads.serve.limits import Limits

    assert Limits().header_timeout_s / 2 >= BACKEND_IDLE_SECONDS
