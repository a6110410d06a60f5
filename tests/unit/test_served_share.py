"""status.weight from the routers' counters (torchyard.plans.rollout.served): the share
each version served since the weights last changed, read from hostile text safely."""

from __future__ import annotations

import pytest

from torchyard.plans.rollout.analysis import Unreadable
from torchyard.plans.rollout.served import MIN_ANSWERS, ServedWindow, read_answers, weights_of
from torchyard.router.metrics import RouterMetrics
from torchyard.router.table import RouteTable, VersionRoute


def _metrics(answers: dict[str, int]) -> str:
    """A real router's /metrics after these answers (two status codes each)."""
    metrics = RouterMetrics("digits")
    for version, count in answers.items():
        for i in range(count):
            metrics.routed(version, 200 if i % 3 else 503, 0.001)
    return metrics.render().decode()


def test_a_routers_metrics_read_as_answers_by_version_whatever_their_status():
    assert read_answers(_metrics({"1": 75, "2": 25})) == {"1": 75.0, "2": 25.0}
    assert read_answers("") == {}


@pytest.mark.parametrize(
    "text",
    [
        'torchyard_router_requests_total{model="d",version="1",code="200"} NaN',
        'torchyard_router_requests_total{model="d",version="1",code="200"} -4',
        'torchyard_router_requests_total{model="d",version="1",code="200"} 1e300',
        'torchyard_router_requests_total{model="d",version="1" 3',
        'torchyard_router_requests_total{version="' + "x" * 2000 + '"} 1',
    ],
)
def test_implausible_counters_are_unreadable_not_a_share(text):
    assert isinstance(read_answers(text), Unreadable)


def test_the_share_counts_only_answers_since_the_window_began():
    window = ServedWindow((("2", 25), ("1", 75)), {"pod": {"1": 1000.0, "2": 0.0}})
    assert window.shares({"pod": {"1": 1075.0, "2": 25.0}}) == {"1": 75.0, "2": 25.0}


def test_too_few_answers_give_no_share():
    window = ServedWindow((("2", 25), ("1", 75)), {"pod": {}})
    assert window.shares({"pod": {"1": MIN_ANSWERS - 2.0, "2": 1.0}}) is None


def test_a_restarted_router_pod_counts_all_it_has_and_a_new_one_from_zero():
    window = ServedWindow((("2", 50), ("1", 50)), {"old": {"1": 500.0, "2": 500.0}})
    shares = window.shares({"old": {"1": 10.0, "2": 10.0}, "new": {"1": 20.0, "2": 20.0}})
    assert shares == {"1": 50.0, "2": 50.0}


def test_the_window_measures_the_versions_that_take_requests():
    table = RouteTable(
        1,
        (
            VersionRoute("2", 25, ()),  # no ready pod: takes nothing
            VersionRoute("1", 75, ("10.0.0.1:8080",)),
        ),
    )
    assert weights_of(table) == (("1", 75),)


def test_a_pod_unreadable_when_the_window_began_is_left_out_of_it():
    window = ServedWindow((("2", 50), ("1", 50)), {"a": {"1": 0.0, "2": 0.0}, "b": None})
    # b's lifetime answers (all to version 1, before the window) must not count.
    shares = window.shares({"a": {"1": 20.0, "2": 20.0}, "b": {"1": 900.0, "2": 0.0}})
    assert shares == {"1": 50.0, "2": 50.0}
