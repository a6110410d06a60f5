"""A model's plan (rollout.plan_model): what the ModelVersion controller applies, decided
from what it read, without a cluster. Each test feeds the plan's status back as the
controller's write would, and checks what a user would see in `kubectl get mv`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.builders import model_version, pod
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.plans.rollout.analysis import Counters
from torchyard.plans.rollout.model import (
    HANDOVER_LIMIT_SECONDS,
    PERMANENT_EXIT,
    ROLLBACK_REASONS,
    ModelObserved,
    ModelPlan,
    VersionObserved,
    Window,
    analysed_of,
    candidate_of,
    plan_model,
)
from torchyard.plans.rollout.quality import Quality
from torchyard.plans.rollout.routes import route_table
from torchyard.refusals import Refusal

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


class Model:
    """The model's versions as the watch holds them, and their pods; `plan` decides and
    stores the plan's status as the controller's write would."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, list[dict[str, Any]]] = {}
        self.refusals: dict[str, Refusal] = {}

    def add(self, version: str, replicas: int = 1, **spec: Any) -> str:
        artifact = {"uri": f"file:///models/digits-{version}", "digest": DIGEST}
        body = (
            model_version("digits", version, "ns")
            .uid(f"u{version}")
            .generation(1)
            .spec(artifact=artifact, serving={"replicas": replicas}, **spec)
            .status()  # none written yet
            .obj()
        )
        name = body["metadata"]["name"]
        self.bodies[name] = body
        self.pods[name] = []
        return name

    def ready(self, name: str, count: int = 1) -> None:
        self.pods[name] = [
            pod(f"{name}-{i}").ready().status(podIP="10.0.0.1").obj() for i in range(count)
        ]

    def delete(self, name: str, at: datetime) -> None:
        self.bodies[name]["metadata"]["deletionTimestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def observed(self, now: datetime, window: Window | None = None) -> ModelObserved:
        versions = []
        for name, body in self.bodies.items():
            try:
                spec: ModelVersionSpec | None = ModelVersionSpec.model_validate(body["spec"])
            except ValueError:
                spec = None
            versions.append(VersionObserved(body, spec, self.pods[name], self.refusals.get(name)))
        return ModelObserved(versions, now, window)

    def plan(self, now: datetime, window: Window | None = None) -> ModelPlan:
        plan = plan_model(self.observed(now, window))
        for version in plan.versions:
            body = self.bodies[version.name]
            body["status"] = {**body["status"], **version.status}
        return plan

    def status(self, name: str) -> dict[str, Any]:
        return self.bodies[name]["status"]

    def condition(self, name: str, type: str) -> dict[str, Any]:
        return next(c for c in self.status(name)["conditions"] if c["type"] == type)


def _serving_model() -> Model:
    """digits v1 serving with one ready pod."""
    model = Model()
    model.add("1")
    model.plan(T0)
    model.ready("digits-v1")
    model.plan(T0 + timedelta(seconds=5))  # serves
    model.plan(T0 + timedelta(seconds=6))  # and is the model's stable version
    assert model.status("digits-v1")["phase"] == "Serving"
    assert model.status("digits-v1")["stableVersion"] == "1"
    return model


def test_the_first_version_deploys_and_serves_once_its_pods_are_ready():
    model = Model()
    name = model.add("1", replicas=2)
    plan = model.plan(T0)
    assert plan.version(name).replicas == 2
    assert model.status(name)["phase"] == "Progressing"
    assert model.condition(name, "Available")["message"] == "0/2 serving pods ready"
    model.ready(name, 2)
    plan = model.plan(T0 + timedelta(seconds=3))
    assert model.status(name)["phase"] == "Serving"
    assert model.condition(name, "Ready")["status"] == "True"
    assert [e.reason for e in plan.version(name).events] == ["Serving"]


def test_a_settled_model_writes_nothing_and_asks_for_no_timer():
    """Steady state: the same observations plan no status change, no Event, no
    requeue: the controller makes no API write until something changes."""
    model = _serving_model()
    plan = model.plan(T0 + timedelta(minutes=10))
    assert [(v.status, v.events) for v in plan.versions] == [({}, ())]
    assert plan.requeue_after is None and plan.version("digits-v1").replicas == 1


def test_one_clock_read_stamps_every_time_the_plan_writes():
    model = Model()
    model.add("1")
    later = T0 + timedelta(seconds=42)
    model.plan(later)
    stamps = {c["lastTransitionTime"] for c in model.status("digits-v1")["conditions"]}
    assert stamps == {"2026-12-03T08:00:42Z"}


def test_a_candidate_gets_its_weight_and_its_analysis_window_begins():
    model = _serving_model()
    name = model.add("2", replicas=2, rollout={"steps": [{"setWeight": 50}]})
    t = T0 + timedelta(minutes=1)
    plan = model.plan(t)
    assert candidate_of(model.observed(t).versions) == name
    assert plan.version(name).replicas == 1
    model.ready(name)
    counters = {f"{name}-0": Counters(requests=100.0)}
    plan = model.plan(t + timedelta(seconds=1), Window(None, counters))
    assert plan.window_start == counters  # the next analysis measures from here
    assert model.status(name)["weight"] == 50 and model.status("digits-v1")["weight"] == 50


def test_a_timed_pause_asks_to_be_woken_when_it_ends():
    model = _serving_model()
    steps = [{"setWeight": 0}, {"pause": {"durationSeconds": 30}}, {"setWeight": 0}]
    name = model.add("2", rollout={"steps": steps})
    t = T0 + timedelta(minutes=1)
    for second in range(3):
        plan = model.plan(t + timedelta(seconds=second))
    assert model.status(name)["currentStep"] == 1
    started = datetime.fromisoformat(model.status(name)["stepStartTime"].replace("Z", "+00:00"))
    assert plan.requeue_after == pytest.approx(30 - (t + timedelta(seconds=2) - started).seconds)
    model.plan(started + timedelta(seconds=30))
    assert model.status(name)["currentStep"] > 1  # the pause is over


def test_deleting_the_serving_version_keeps_its_pods_until_the_restored_one_is_ready():
    model = _serving_model()
    model.add("2", promote=True)
    model.ready("digits-v2")
    for _ in range(3):  # v2 is promoted, serves, and is the stable version
        model.plan(T0 + timedelta(minutes=2))
    assert model.status("digits-v2")["phase"] == "Serving"
    assert model.status("digits-v1")["phase"] == "Superseded"
    model.pods["digits-v1"] = []
    deleted = T0 + timedelta(minutes=3)
    model.delete("digits-v2", deleted)

    plan = model.plan(deleted + timedelta(seconds=5))
    assert plan.release == () and plan.version("digits-v1").replicas == 1
    assert plan.version("digits-v2") is None  # a leaving version's Deployment stays as it is
    assert model.status("digits-v1")["phase"] == "Serving"
    assert plan.requeue_after == 0  # v1 took over: the next plan follows from that at once
    plan = model.plan(deleted + timedelta(seconds=6))
    assert plan.release == ()
    assert plan.requeue_after == pytest.approx(HANDOVER_LIMIT_SECONDS - 6)
    model.ready("digits-v1")
    # A pod of v1 that is terminating, however Ready while it drains, takes no traffic.
    model.pods["digits-v1"][0]["metadata"]["deletionTimestamp"] = "2026-12-03T09:03:08Z"
    assert model.plan(deleted + timedelta(seconds=8)).release == ()
    model.ready("digits-v1")
    assert model.plan(deleted + timedelta(seconds=9)).release == ("digits-v2",)


def test_a_leaving_version_goes_anyway_after_the_handover_limit():
    model = _serving_model()
    model.add("2", promote=True)
    model.ready("digits-v2")
    for _ in range(3):
        model.plan(T0 + timedelta(minutes=1))
    assert model.status("digits-v2")["phase"] == "Serving"
    model.pods["digits-v1"] = []
    model.delete("digits-v2", T0 + timedelta(minutes=2))
    later = T0 + timedelta(minutes=2, seconds=HANDOVER_LIMIT_SECONDS)
    assert model.plan(later).release == ("digits-v2",)


def test_a_failed_version_stays_unhealthy_once_its_pods_are_gone():
    """A Failed version runs no pods: the verdict its pods gave outlasts them."""
    model = _serving_model()
    name = model.add("2")
    said = {"reason": "FactoryNotAllowed", "message": "factory 'os:system' is not allowed"}
    ended = (
        pod(f"{name}-0")
        .ready(False)
        .status(podIP="10.0.0.1")
        .terminated(PERMANENT_EXIT, message=json.dumps(said))
    )
    model.pods[name] = [ended.obj()]
    model.plan(T0 + timedelta(minutes=1))
    assert model.status(name)["phase"] == "Failed"
    failed = model.condition(name, "Healthy")
    assert (failed["status"], failed["reason"]) == ("False", "FactoryNotAllowed")
    model.pods[name] = []
    plan = model.plan(T0 + timedelta(minutes=2))
    assert model.condition(name, "Healthy") == failed and not plan.version(name).healthy


def test_an_invalid_version_gets_only_the_admission_verdict():
    model = _serving_model()
    name = model.add("2")
    model.bodies[name]["spec"]["serving"] = {"replicas": -1}
    plan = model.plan(T0 + timedelta(minutes=1))
    assert plan.version(name).replicas is None
    assert model.status(name)["phase"] == "Failed"
    assert model.condition(name, "Accepted")["status"] == "False"
    assert "serving.replicas" in model.condition(name, "Accepted")["message"]
    assert model.status("digits-v1")["phase"] == "Serving"


def test_a_refused_deployment_is_said_in_ready_once():
    model = Model()
    name = model.add("1")
    model.refusals[name] = Refusal("FailedCreate", "exceeded quota: pods=0; raise the quota")
    first = model.plan(T0)
    assert model.condition(name, "Ready")["reason"] == "FailedCreate"
    assert "raise the quota" in model.condition(name, "Ready")["message"]
    assert [e.type for e in first.version(name).events].count("Warning") == 1
    again = model.plan(T0 + timedelta(seconds=10))
    assert [e.type for e in again.version(name).events].count("Warning") == 0


def _candidate_in_a_window(
    analysis: dict[str, Any], steps: list[dict[str, Any]]
) -> tuple[Model, str, dict[str, Counters], datetime]:
    """digits v2 rolling out over v1 with `analysis`: its pod ready, its analysis window
    begun; returns the model, v2's name, the window's start and when v2 was applied."""
    model = _serving_model()
    name = model.add("2", rollout={"steps": steps, "analysis": analysis})
    t = T0 + timedelta(minutes=1)
    model.plan(t)
    model.ready(name)
    start = {f"{name}-0": Counters(requests=0.0)}
    model.plan(t + timedelta(seconds=1), Window(None, start))
    return model, name, start, t


def test_every_rollback_is_counted_under_a_reason_the_counter_is_made_for():
    """The operator creates the rollback counter's series at 0 for ROLLBACK_REASONS only:
    a rollback under any other reason would first be scraped at 1, and never alert."""
    paused = {"steps": [{"setWeight": 0}, {"pause": {}}]}
    model = _serving_model()
    model.add("2", rollout=paused)
    made = list(model.plan(T0 + timedelta(minutes=1)).rollbacks)
    model.add("3", rollout=paused)  # replaces v2 mid-rollout
    made += model.plan(T0 + timedelta(minutes=2)).rollbacks
    model.bodies["digits-v3"]["spec"]["rollback"] = True
    made += model.plan(T0 + timedelta(minutes=3)).rollbacks

    analysis = {"failureLimit": 1, "intervalSeconds": 30}
    model, name, start, t = _candidate_in_a_window(analysis, [{"setWeight": 50}])
    failing = {f"{name}-0": Counters(requests=100.0, server_errors=50.0)}
    made += model.plan(t + timedelta(seconds=40), Window(start, failing)).rollbacks

    made += _quality_rollback()

    model, name, promoted = _promoted_and_watched()
    made += _regress(model, name, promoted)
    assert sorted(made) == sorted(ROLLBACK_REASONS)


REFERENCE = {
    "metric": "agreement",
    "minScore": 0.9,
    "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [2, 2], "data": [0, 1, 2, 3]}],
}


def _quality_rollback() -> list[str]:
    """v2 answers every request without an error, but its answers to the reference
    request agree with v1's on one row of two: rolled back for quality."""
    analysis = {"failureLimit": 1, "intervalSeconds": 30, "quality": REFERENCE}
    model, name, start, t = _candidate_in_a_window(analysis, [{"setWeight": 50}])
    healthy = {f"{name}-0": Counters(requests=100.0)}
    worse = Quality("agreement", 0.5, 0.9, 2)
    plan = model.plan(t + timedelta(seconds=40), Window(start, healthy, worse))
    status = model.bodies[name]["status"]
    assert status["phase"] == "RolledBack"
    assert status["analysis"]["verdict"] == "Fail"
    assert status["analysis"]["errorRate"] == 0.0
    assert status["analysis"]["quality"] == {
        "metric": "agreement", "score": 0.5, "minScore": 0.9, "rows": 2
    }  # fmt: skip
    assert "agreement 50.00% (1 of 2 rows agree with the serving version) below the " \
        "minimum 90.00%" in status["analysis"]["message"]  # fmt: skip
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "QualityRegression"
    return list(plan.rollbacks)


WATCHED = {"failureLimit": 2, "intervalSeconds": 30, "afterPromotionSeconds": 300}


def _promoted_and_watched(after: int = 300) -> tuple[Model, str, datetime]:
    """digits v2 rolled out at 100 % over v1, passed its analysis, promoted, watched."""
    analysis = {**WATCHED, "afterPromotionSeconds": after}
    model, name, start, t = _candidate_in_a_window(analysis, [{"setWeight": 100}])
    healthy = {f"{name}-0": Counters(requests=100.0)}
    promoted = t + timedelta(seconds=40)
    model.plan(promoted, Window(start, healthy))
    assert model.status(name)["phase"] == "Serving"
    until = (promoted + timedelta(seconds=after)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert model.status(name)["watchedUntil"] == until
    assert f"watched until {until}" in model.condition(name, "Progressing")["message"]
    plan = model.plan(promoted + timedelta(seconds=1))  # v1 superseded: the rollback target
    assert model.status("digits-v1")["phase"] == "Superseded"
    assert plan.version("digits-v1").replicas == 0
    model.pods["digits-v1"] = []  # its pod has gone
    plan = model.plan(promoted + timedelta(seconds=2))
    assert plan.window_start is not None  # the watch's first window begins
    assert plan.requeue_after == 28  # its first analysis is due then
    return model, name, promoted


def _regress(model: Model, name: str, promoted: datetime) -> list[str]:
    """Two failed analyses after promotion: the rollbacks the plans made."""
    made: list[str] = []
    start = {f"{name}-0": Counters(requests=100.0)}
    for index in (1, 2):
        errors = {f"{name}-0": Counters(requests=100.0 + 100 * index, server_errors=50.0 * index)}
        plan = model.plan(promoted + timedelta(seconds=31 * index), Window(start, errors))
        made += plan.rollbacks
        start = errors
    return made


def test_a_version_that_regresses_after_promotion_is_rolled_back_to_the_previous():
    model, name, promoted = _promoted_and_watched()
    observed = model.observed(promoted + timedelta(seconds=31))
    assert analysed_of(observed.versions) == name  # its pods are scraped
    made = _regress(model, name, promoted)
    assert made == ["RegressedAfterPromotion"]
    status = model.status(name)
    assert status["phase"] == "RolledBack" and status["weight"] == 0
    progressing = model.condition(name, "Progressing")
    assert progressing["reason"] == "RegressedAfterPromotion"
    assert "analysis failed 2 times (failureLimit 2)" in progressing["message"]
    assert "error rate 50.00% (50 of 100 requests)" in progressing["message"]
    assert "traffic returned to version 1" in progressing["message"]
    # Its pods stay until v1's are ready again: no moment without a serving pod.
    later = promoted + timedelta(seconds=63)
    plan = model.plan(later)
    assert model.status("digits-v1")["phase"] == "Serving"
    assert plan.version("digits-v1").replicas == 1 and plan.version(name).replicas == 1
    model.ready("digits-v1")
    assert model.plan(later + timedelta(seconds=2)).version(name).replicas == 0


def test_the_watch_ends_and_spec_promote_skips_it():
    model, name, promoted = _promoted_and_watched()
    healthy = {f"{name}-0": Counters(requests=100.0 + 10 * i) for i in range(3)}
    ended = promoted + timedelta(seconds=301)
    # An analysis due before the end runs, however late: it passes, and the watch is over.
    plan = model.plan(ended, Window({f"{name}-0": Counters(requests=0.0)}, healthy))
    assert plan.analysis == "Pass" and plan.rollbacks == ()
    assert model.status(name)["phase"] == "Serving"
    assert analysed_of(model.observed(ended).versions) is None

    model = _serving_model()
    forced = model.add("2", rollout={"steps": [{"pause": {}}], "analysis": WATCHED}, promote=True)
    t = T0 + timedelta(minutes=1)
    model.plan(t)
    model.ready(forced)
    model.plan(t + timedelta(seconds=1))
    assert model.status(forced)["phase"] == "Serving"
    assert "watchedUntil" not in model.status(forced)


def test_a_watch_of_exactly_failure_limit_intervals_still_rolls_back():
    """Late reconciles do not push the last analysis past the end: the watch's analyses
    are on a grid from promotion."""
    model, name, promoted = _promoted_and_watched(after=60)
    made = _regress(model, name, promoted)
    assert made == ["RegressedAfterPromotion"]


def test_spec_promote_or_a_shorter_watch_ends_it():
    for change in ({"promote": True}, {"afterPromotionSeconds": 0}):
        model, name, promoted = _promoted_and_watched()
        spec = model.bodies[name]["spec"]
        if "promote" in change:
            spec["promote"] = True
        else:
            spec["rollout"]["analysis"] = {**WATCHED, **change}
        assert analysed_of(model.observed(promoted + timedelta(seconds=31)).versions) is None
        assert _regress(model, name, promoted) == [], change


def test_a_version_that_stops_serving_drops_its_watch():
    """v2 promoted and watched; v3 promoted over it: v2, superseded, loses watchedUntil,
    so restoring it later (v3 rolled back) does not revive v2's old watch."""
    model, name, promoted = _promoted_and_watched()
    v3 = model.add("3", rollout={"steps": [{"setWeight": 100}], "analysis": WATCHED})
    t = promoted + timedelta(seconds=40)
    model.plan(t)
    assert analysed_of(model.observed(t).versions) == v3  # the candidate, not the watch
    _passes_and_is_promoted(model, v3, t)
    assert model.status(name)["phase"] == "Superseded"
    assert model.status(name).get("watchedUntil") is None


def _table(model: Model, now: datetime, generation: int = 1) -> list[tuple[str, int, int]]:
    """The router's table for the plan at `now`: (version, weight, ready endpoints)."""
    observed = model.observed(now)
    table = route_table(observed.versions, model.plan(now), generation).table
    assert table.generation == generation
    return [(r.version, r.weight, len(r.endpoints)) for r in table.versions]


def test_the_router_gets_the_plans_weights_with_the_candidate_first():
    model = _serving_model()
    model.ready("digits-v1", 3)
    name = model.add("2", replicas=2, rollout={"steps": [{"setWeight": 25}, {"pause": {}}]})
    t = T0 + timedelta(minutes=1)
    # Not ready yet: listed with its weight and no endpoint (the router skips it).
    assert _table(model, t) == [("2", 25, 0), ("1", 75, 3)]
    model.ready(name)
    assert _table(model, t + timedelta(seconds=1)) == [("2", 25, 1), ("1", 75, 3)]


def test_the_sticky_header_is_the_one_the_version_under_rollout_names():
    model = _serving_model()
    model.bodies["digits-v1"]["spec"]["rollout"] = {"stickyHeader": "X-Old"}
    t = T0 + timedelta(minutes=1)
    table = route_table(model.observed(t).versions, model.plan(t), 1).table
    assert table.sticky_header == "X-Old"
    name = model.add("2", rollout={"steps": [{"setWeight": 25}], "stickyHeader": "X-User"})
    table = route_table(model.observed(t).versions, model.plan(t), 2).table
    assert table.sticky_header == "X-User"
    model.bodies[name]["spec"]["rollout"].pop("stickyHeader")
    table = route_table(model.observed(t).versions, model.plan(t), 3).table
    assert table.sticky_header is None  # the rollout under way asks for none


def _candidate_ready(weight: int) -> tuple[Model, str, datetime]:
    """v1 serving, v2 paused at `weight` with a ready pod; and the time of v2's apply."""
    model = _serving_model()
    name = model.add("2", rollout={"steps": [{"setWeight": weight}, {"pause": {}}]})
    t = T0 + timedelta(minutes=1)
    model.plan(t)
    model.ready(name)
    return model, name, t


def test_a_rollback_routes_nothing_to_the_candidate_at_once():
    model, name, t = _candidate_ready(50)
    model.plan(t + timedelta(seconds=1))
    model.bodies[name]["spec"]["rollback"] = True
    model.bodies[name]["metadata"]["generation"] = 2
    # The plan that decides the rollback is the one whose table is pushed first.
    assert _table(model, t + timedelta(seconds=2)) == [("1", 100, 1), ("2", 0, 1)]


def test_while_no_weighted_version_is_ready_the_ready_ones_share_by_their_pods():
    """A deleted serving version hands over to the restored one: until that one has a
    ready pod, the leaving version's pods still answer, as they did without a router."""
    model = Model()
    old, new = model.add("1"), model.add("2")
    model.bodies[old]["status"] = {"phase": "Superseded"}
    model.bodies[new]["status"] = {"phase": "Serving"}
    model.ready(new, 2)
    model.delete(new, T0)
    assert _table(model, T0 + timedelta(seconds=1)) == [("1", 0, 0), ("2", 100, 2)]
    routing = route_table(model.observed(T0).versions, model.plan(T0 + timedelta(seconds=1)), 1)
    assert routing.handing_over  # status.weight is then not the routers' to say
    model.ready(old)
    assert _table(model, T0 + timedelta(seconds=2)) == [("1", 100, 1), ("2", 0, 2)]
    routing = route_table(model.observed(T0).versions, model.plan(T0 + timedelta(seconds=2)), 1)
    assert not routing.handing_over


def test_status_weight_is_the_share_served_and_desired_weight_the_one_asked_for():
    model, name, t = _candidate_ready(25)
    # Nothing counted yet (or no router): the weight asked for.
    plan = model.plan(t + timedelta(seconds=1))
    assert (model.status(name)["weight"], model.status(name)["desiredWeight"]) == (25, 25)
    served = {"2": 23.6, "1": 76.4}
    plan = plan_model(replace(model.observed(t + timedelta(seconds=11)), served=served))
    candidate, stable = plan.version(name), plan.version("digits-v1")
    assert candidate.status["weight"] == 24 and "desiredWeight" not in candidate.status
    assert (candidate.weight, candidate.desired_weight) == (24.0, 25)
    assert stable.status["weight"] == 76 and stable.desired_weight == 75


def _passes_and_is_promoted(model: Model, name: str, applied: datetime) -> None:
    """`name`, a candidate at 100 % applied at `applied`: its pod ready, an analysis of
    100 requests without an error 40 s later, and the plan that promotes it."""
    model.ready(name)
    start = {f"{name}-0": Counters(requests=0.0)}
    model.plan(applied + timedelta(seconds=1), Window(None, start))
    healthy = {f"{name}-0": Counters(requests=100.0)}
    model.plan(applied + timedelta(seconds=40), Window(start, healthy))
    model.plan(applied + timedelta(seconds=41))


def _history(model: Model, name: str) -> list[tuple[str, str, str]]:
    return [(e["version"], e["outcome"], e["reason"]) for e in model.status(name)["history"]]


def test_every_version_carries_the_models_rollouts_newest_first_even_once_deleted():
    # v2 fails its analysis at 50 %: rolled back.
    analysis = {"failureLimit": 1, "intervalSeconds": 30}
    model, name, start, t = _candidate_in_a_window(analysis, [{"setWeight": 50}])
    failing = {f"{name}-0": Counters(requests=100.0, server_errors=50.0)}
    model.plan(t + timedelta(seconds=40), Window(start, failing))
    model.plan(t + timedelta(seconds=41))
    # v3 passes and is promoted.
    v3 = model.add("3", rollout={"steps": [{"setWeight": 100}], "analysis": analysis})
    t3 = t + timedelta(minutes=2)
    model.plan(t3)
    _passes_and_is_promoted(model, v3, t3)
    assert model.status(v3)["phase"] == "Serving"

    expected = [
        ("3", "Serving", "Promoted"),
        ("2", "RolledBack", "AnalysisFailed"),
        ("1", "Serving", "Serving"),  # the first version: no rollout steps
    ]
    for version in ("digits-v1", name, v3):
        assert _history(model, version) == expected
    rolled_back = model.status(v3)["history"][1]
    assert rolled_back["time"] == "2026-12-03T08:01:40Z"
    assert "error rate 50.00%" in rolled_back["message"]

    # v2 deleted (from Git): the others keep its entry; a settled model writes nothing.
    del model.bodies[name]
    plan = model.plan(t3 + timedelta(minutes=5))
    assert _history(model, v3) == expected
    assert all("history" not in v.status for v in plan.versions)


def test_a_terminating_pod_still_ready_is_not_a_ready_replica():
    """While it drains it may be Ready; it takes no new requests (the alert on a version
    with traffic and no ready pod reads this count)."""
    model = _serving_model()
    model.pods["digits-v1"][0]["metadata"]["deletionTimestamp"] = "2026-12-03T09:00:30Z"
    model.plan(T0 + timedelta(seconds=30))
    assert model.status("digits-v1")["readyReplicas"] == 0
    assert model.status("digits-v1")["phase"] == "Serving"  # still the model's version
