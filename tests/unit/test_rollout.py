"""The rollout decisions a controller applies: steps, analysis, rollback, replica plans."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from torchyard.api.modelversion import AnalysisSpec, ModelVersionSpec, version_key
from torchyard.plans.rollout import (
    Counters,
    Measurement,
    Observed,
    PodFailure,
    RolloutDecision,
    RolloutState,
    VersionView,
    analyse,
    assign_roles,
    decide,
    effective_weight,
    measure,
    replica_plan,
    replicas_for,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GOOD = Measurement(requests=200, errors=0, p99_latency_ms=12.0)
BAD = Measurement(requests=120, errors=60, p99_latency_ms=12.0)


def _spec(steps=None, analysis=None, replicas=2, **controls) -> ModelVersionSpec:
    rollout = {"analysis": {"intervalSeconds": 30, "failureLimit": 2, **(analysis or {})}}
    if steps is not None:
        rollout["steps"] = steps
    return ModelVersionSpec.model_validate(
        {
            "model": "digits",
            "version": "2",
            "artifact": {"uri": "file:///models/digits-2", "digest": "sha256:" + "a" * 64},
            "serving": {"replicas": replicas},
            "rollout": rollout,
            **controls,
        }
    )


class Controller:
    """Calls decide() the way the controller does: state in status, time moving on."""

    def __init__(self, spec: ModelVersionSpec, previous: str | None = "1") -> None:
        self.spec = spec
        self.previous = previous
        self.state = RolloutState(phase="Pending")
        self.events: list[str] = []

    def at(self, seconds: float, ready: int = 2, measurement=GOOD, **kw) -> RolloutDecision:
        observed = Observed(
            now=T0 + timedelta(seconds=seconds),
            ready_replicas=ready,
            measurement=measurement,
            previous_version=self.previous,
            **kw,
        )
        decision = decide(self.spec, self.state, observed)
        # Through status and back, as the real controller keeps it.
        self.state = RolloutState.from_status(decision.state.to_status())
        self.events += [event.reason for event in decision.events]
        return decision

    def set(self, **controls) -> None:
        self.spec = self.spec.model_copy(update=controls)


STEPS = [
    {"setWeight": 20},
    {"pause": {"durationSeconds": 60}},
    {"setWeight": 50},
    {"pause": {}},
]


def test_steps_advance_on_passing_analysis_and_timed_pauses_then_wait_for_promote():
    rollout = Controller(_spec(STEPS))

    d = rollout.at(0, ready=0)
    assert (d.state.phase, d.state.step, d.weight, d.reason) == (
        "Progressing",
        0,
        20,
        "WaitingForReplicas",
    )
    assert rollout.events == ["RolloutStarted"]

    # The pod answers by t=5 (last seen not ready at t=0): an analysis is due at t=30.
    d = rollout.at(5, ready=1)
    assert d.reason == "WaitingForAnalysis" and d.analysis is None
    assert d.requeue_after == pytest.approx(25)

    d = rollout.at(35, ready=1)
    assert d.analysis is not None and d.analysis.verdict == "Pass"
    assert (d.state.step, d.weight, d.reason) == (1, 20, "PauseStep")
    # Analysis goes on during the pause: the next one is due before the pause ends.
    assert d.restart_window and d.requeue_after == pytest.approx(30)

    d = rollout.at(65, ready=1)
    assert (d.state.step, d.reason) == (1, "PauseStep")
    assert "30 s more" in d.message

    # Pause over: 50 % of 2 replicas is still 1 pod, so the weight is in effect at once.
    d = rollout.at(96, ready=1)
    assert (d.state.step, d.weight, d.reason) == (2, 50, "WaitingForAnalysis")

    d = rollout.at(126, ready=1)
    assert (d.state.step, d.state.phase, d.reason) == (3, "Paused", "PausedUntilPromoted")

    # A pause without duration holds for as long as it takes.
    d = rollout.at(100_000, ready=1)
    assert (d.state.step, d.state.phase, d.weight) == (3, "Paused", 50)

    rollout.set(promote=True)
    d = rollout.at(100_010, ready=1)
    assert (d.state.phase, d.weight, d.reason) == ("Progressing", 100, "Promoting")
    assert "version 1 keeps its pods" in d.message
    d = rollout.at(100_020, ready=2)
    assert (d.state.phase, d.weight, d.reason) == ("Serving", 100, "Promoted")
    assert "spec.promote" in d.message
    assert rollout.events == [
        "RolloutStarted",
        "StepCompleted",
        "StepCompleted",
        "StepCompleted",
        "Promoted",
    ]


def test_passing_the_last_step_promotes_once_all_replicas_are_ready():
    rollout = Controller(_spec())  # default steps: setWeight 100
    rollout.at(0, ready=0)
    d = rollout.at(1, ready=2)
    assert d.reason == "WaitingForAnalysis"
    d = rollout.at(31, ready=2)
    assert (d.state.phase, d.weight, d.reason) == ("Serving", 100, "Promoted")
    assert "passed all 1 rollout steps" in d.message
    assert decide(rollout.spec, d.state, Observed(now=T0)).state.phase == "Serving"


def test_a_step_needs_a_pass_at_its_own_weight():
    rollout = Controller(_spec([{"setWeight": 20}, {"setWeight": 60}], replicas=5))
    rollout.at(0, ready=1)
    d = rollout.at(30, ready=1)
    assert (d.state.step, d.weight, d.reason) == (1, 60, "WaitingForReplicas")
    # The pass at 20 % does not carry over; the clock starts when 3 pods serve 60 %
    # (last seen short of that at t=45).
    assert rollout.at(45, ready=2).reason == "WaitingForReplicas"
    d = rollout.at(50, ready=3)
    assert d.reason == "WaitingForAnalysis" and d.analysis is None
    assert rollout.at(74, ready=3).reason == "WaitingForAnalysis"
    assert rollout.at(75, ready=3).reason == "Promoting"


@pytest.mark.parametrize(
    ("measurement", "limits", "verdict", "words"),
    [
        (None, {}, "Inconclusive", "no metrics"),
        (Measurement(9, 0, 5.0), {"minRequestCount": 10}, "Inconclusive", "never a pass"),
        (Measurement(0, 0, None), {"minRequestCount": 0}, "Inconclusive", "0 requests"),
        (Measurement(100, 1, 5.0), {"maxErrorRate": 0.01}, "Pass", "1.00% (1 of 100"),
        (Measurement(100, 2, 5.0), {"maxErrorRate": 0.01}, "Fail", "2.00% (2 of 100"),
        (Measurement(100, 0, 250.0), {"maxP99LatencyMs": 200}, "Fail", "p99 latency 250.0 ms"),
        (Measurement(100, 0, None), {"maxP99LatencyMs": 200}, "Inconclusive", "latency"),
        (Measurement(100, 0, 150.0), {"maxP99LatencyMs": 200}, "Pass", "within"),
    ],
)
def test_analysis_verdicts(measurement, limits, verdict, words):
    analysis = analyse(measurement, AnalysisSpec.model_validate(limits), T0)
    assert analysis.verdict == verdict
    assert words in analysis.message


def test_inconclusive_analysis_never_passes_a_step_nor_counts_as_a_failure():
    rollout = Controller(_spec([{"setWeight": 20}, {"setWeight": 100}]))
    rollout.at(0, ready=1)
    for t in range(30, 300, 30):
        d = rollout.at(t, ready=1, measurement=Measurement(3, 3, 5.0))
        assert d.analysis is not None and d.analysis.verdict == "Inconclusive"
        assert (d.state.step, d.state.failures, d.state.phase) == (0, 0, "Progressing")
    assert "fewer than the 10 needed" in d.message
    # Told once, not at every interval.
    assert rollout.events.count("AnalysisInconclusive") == 1


def test_failure_limit_rolls_back_with_the_failing_figures():
    rollout = Controller(_spec(STEPS))
    rollout.at(0, ready=1)
    d = rollout.at(30, ready=1, measurement=BAD)
    assert (d.state.phase, d.state.failures, d.weight) == ("Progressing", 1, 20)
    assert rollout.events[-1] == "AnalysisFailed"
    d = rollout.at(60, ready=1, measurement=GOOD)
    assert d.state.step == 1  # a pass moves on; failures so far are kept
    d = rollout.at(90, ready=1, measurement=BAD)
    assert (d.state.phase, d.weight, d.reason) == ("RolledBack", 0, "AnalysisFailed")
    assert "error rate 50.00% (60 of 120 requests) exceeds the maximum 1.00%" in d.message
    assert "failureLimit 2" in d.message and "version 1" in d.message
    assert rollout.events[-1] == "RolledBack"
    assert d.state.to_status()["analysis"]["failures"] == 2
    # Rolled back is final: promote does not bring it back.
    rollout.set(promote=True)
    assert rollout.at(120).state.phase == "RolledBack"


def test_manual_pause_holds_the_step_while_analysis_goes_on():
    rollout = Controller(_spec(STEPS))
    rollout.at(0, ready=1)
    rollout.set(paused=True)
    d = rollout.at(30, ready=1)
    assert (d.state.phase, d.state.step, d.reason) == ("Paused", 0, "Paused")
    assert d.analysis is not None and d.analysis.verdict == "Pass"
    d = rollout.at(60, ready=1, measurement=BAD)
    d = rollout.at(90, ready=1, measurement=BAD)
    assert d.state.phase == "RolledBack"  # paused is not a shield for a failing version


def test_resume_after_a_manual_pause_continues_where_it_stopped():
    rollout = Controller(_spec(STEPS))
    rollout.at(0, ready=1)
    rollout.set(paused=True)
    rollout.at(30, ready=1)
    rollout.set(paused=False)
    d = rollout.at(40, ready=1)
    assert (d.state.phase, d.state.step) == ("Progressing", 1)
    assert rollout.events[-2:] == ["StepCompleted", "Resumed"]


def test_manual_rollback_is_immediate_and_skips_analysis():
    rollout = Controller(_spec(STEPS))
    rollout.at(0, ready=1)
    rollout.set(rollback=True)
    d = rollout.at(1, ready=1)
    assert (d.state.phase, d.weight, d.reason, d.analysis) == (
        "RolledBack",
        0,
        "ManualRollback",
        None,
    )
    assert "version 1" in d.message


def test_rollback_of_a_serving_version_and_of_a_first_version():
    spec = _spec(rollback=True)
    serving = RolloutState(phase="Serving", step=1)
    back = decide(spec, serving, Observed(now=T0, ready_replicas=2, previous_version="1"))
    assert (back.state.phase, back.weight) == ("RolledBack", 0)
    # Nothing to roll back to: the model is not taken offline.
    alone = decide(spec, serving, Observed(now=T0, ready_replicas=2))
    assert (alone.state.phase, alone.weight, alone.reason) == ("Serving", 100, "NoRollbackTarget")
    assert [e.type for e in alone.events] == ["Warning"]


def test_first_version_serves_without_steps_once_its_replicas_are_ready():
    rollout = Controller(_spec(STEPS), previous=None)
    d = rollout.at(0, ready=1)
    assert (d.state.phase, d.weight, d.reason) == ("Progressing", 100, "Deploying")
    d = rollout.at(3, ready=2)
    assert (d.state.phase, d.reason) == ("Serving", "Serving")
    assert rollout.events == ["Deploying", "Serving"]


def test_a_pod_failure_fails_the_version_and_routes_nothing_to_it():
    rollout = Controller(_spec(STEPS))
    failure = PodFailure("DigestMismatch", "digest is sha256:bbbb but sha256:aaaa was expected")
    d = rollout.at(0, ready=0, failure=failure)
    assert (d.state.phase, d.weight, d.reason) == ("Failed", 0, "DigestMismatch")
    assert "version 1 keeps serving" in d.message


def test_state_survives_the_status_round_trip():
    state = RolloutState(
        phase="Progressing",
        step=2,
        step_started=T0,
        failures=1,
        analysis=analyse(BAD, AnalysisSpec(), T0 + timedelta(seconds=30)),
    )
    status = state.to_status()
    assert status["analysis"] == {
        "time": "2026-05-01T12:00:30Z",
        "verdict": "Fail",
        "requests": 120,
        "errorRate": 0.5,
        "p99LatencyMs": 12.0,
        "failures": 1,
        "message": "error rate 50.00% (60 of 120 requests) exceeds the maximum 1.00%",
    }
    again = RolloutState.from_status(status)
    assert again.analysis is not None
    assert replace(again, analysis=None) == replace(state, analysis=None)
    assert again.analysis.measurement == BAD
    # Why it failed survives too: later reconciles still say it in the condition.
    assert again.analysis.message == state.analysis.message


# -- measurements from the pods' metrics ------------------------------------------------


def _scrape(requests: int, errors_5xx: int, errors_4xx: int, fast: int, slow: int) -> str:
    """Text as the serving pods' prometheus-client renders it."""
    labels = 'model="digits",version="2"'
    return f"""# HELP torchyard_inference_requests_total Inference requests answered.
# TYPE torchyard_inference_requests_total counter
torchyard_inference_requests_total{{{labels}}} {requests}.0
torchyard_inference_requests_created{{{labels}}} 1.7e+09
torchyard_inference_errors_total{{{labels},code="500"}} {errors_5xx}.0
torchyard_inference_errors_total{{{labels},code="400"}} {errors_4xx}.0
torchyard_inference_request_duration_seconds_bucket{{{labels},le="0.01"}} {fast}.0
torchyard_inference_request_duration_seconds_bucket{{{labels},le="0.1"}} {fast + slow}.0
torchyard_inference_request_duration_seconds_bucket{{{labels},le="+Inf"}} {fast + slow}.0
torchyard_inference_request_duration_seconds_count{{{labels}}} {fast + slow}.0
"""


def test_measure_sums_pod_windows_counts_only_server_errors_and_survives_restarts():
    before = {
        "pod-a": Counters.parse(_scrape(100, 1, 5, 100, 0)),
        "pod-b": Counters.parse(_scrape(50, 0, 0, 50, 0)),
    }
    after = {
        # +200, 45 of them the client's mistakes (4xx: left out), 2 server errors
        "pod-a": Counters.parse(_scrape(300, 3, 50, 290, 10)),
        "pod-b": Counters.parse(_scrape(20, 1, 0, 20, 0)),  # restarted: all 20 are new
        "pod-c": Counters.parse(_scrape(80, 0, 0, 80, 0)),  # started in the window
    }
    window = measure(before, after)
    assert (window.requests, window.errors) == (255, 3)
    # 10 of 300 are slow (10-100 ms): the 99th percentile is in that bucket.
    assert window.p99_latency_ms is not None
    assert 10.0 < window.p99_latency_ms <= 100.0
    assert measure(after, after) == Measurement(0, 0, None)


# -- replica ratios ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "replicas", "ready", "plan"),
    [
        (0, 4, 0, (0, 4)),
        (20, 4, 0, (1, 4)),  # the stable version keeps its pods until the new one answers
        (20, 4, 1, (1, 4)),  # 20 % of 4 pods is 0.8: the stable version gives up nothing
        (50, 4, 2, (2, 2)),
        (50, 2, 1, (1, 1)),
        (100, 4, 2, (4, 2)),
        (100, 4, 4, (4, 0)),
        (20, 1, 1, (1, 1)),  # below 100 % the stable version keeps a pod
    ],
)
def test_replica_plan(weight, replicas, ready, plan):
    got = replica_plan(
        weight, candidate_replicas=replicas, stable_replicas=replicas, candidate_ready=ready
    )
    assert (got.candidate, got.stable) == plan


@pytest.mark.parametrize(("new", "old"), [(1, 3), (3, 1), (2, 2), (5, 3)])
def test_the_previous_version_never_drops_below_what_the_new_ready_pods_replace(new, old):
    for weight in range(0, 101, 10):
        wanted = replicas_for(weight, new)
        for ready in range(0, wanted + 1):
            plan = replica_plan(
                weight, candidate_replicas=new, stable_replicas=old, candidate_ready=ready
            )
            # The old version gives up at most the share the new ready pods carry ...
            assert plan.stable / old + ready / new >= 1 - 1e-9
            # ... so before any new pod answers, it keeps every pod.
            assert ready > 0 or plan.stable == old
        done = replica_plan(
            weight, candidate_replicas=new, stable_replicas=old, candidate_ready=wanted
        )
        assert (done.stable == 0) == (weight == 100)


def test_effective_weight_is_the_share_of_ready_pods():
    assert effective_weight(1, 3) == 25
    assert effective_weight(1, 1) == 50
    assert effective_weight(0, 0) == 0
    assert replicas_for(20, 2) == 1 and replicas_for(0, 2) == 0 and replicas_for(100, 3) == 3


# -- roles of a model's versions --------------------------------------------------------


def _views(**phases) -> list[VersionView]:
    return [VersionView(f"digits-{v}", v.replace("_", "."), p) for v, p in phases.items()]


def test_roles_during_a_rollout():
    roles = assign_roles(_views(v1="Superseded", v2="Serving", v3="Progressing"))
    assert roles.stable and roles.stable.version == "v2"
    assert roles.candidate and roles.candidate.version == "v3"
    assert roles.previous and roles.previous.version == "v1"
    assert [(r.view.version, r.phase) for r in roles.retired] == [("v1", "Superseded")]


def test_a_newer_version_replaces_the_candidate_mid_rollout():
    roles = assign_roles(_views(v1="Serving", v2="Progressing", v3=None))
    assert roles.candidate and roles.candidate.version == "v3"
    assert [(r.view.version, r.phase, r.reason) for r in roles.retired] == [
        ("v2", "RolledBack", "Replaced")
    ]


def test_after_promotion_the_old_version_is_superseded():
    roles = assign_roles(_views(v1="Serving", v2="Serving"))
    assert roles.stable and roles.stable.version == "v2" and roles.candidate is None
    assert [(r.view.version, r.phase) for r in roles.retired] == [("v1", "Superseded")]


def test_deleting_or_rolling_back_the_serving_version_restores_the_previous_one():
    deleted = [
        VersionView("digits-v1", "v1", "Superseded"),
        VersionView("digits-v2", "v2", "Serving", deleting=True),
    ]
    roles = assign_roles(deleted)
    assert roles.stable and roles.stable.version == "v1" and roles.retired == ()
    rolled_back = assign_roles(_views(v1="Superseded", v2="RolledBack"))
    assert rolled_back.stable and rolled_back.stable.version == "v1"
    assert rolled_back.candidate is None


def test_first_version_is_a_candidate_without_a_stable_one():
    roles = assign_roles(_views(v1=None))
    assert roles.stable is None and roles.candidate and roles.candidate.version == "v1"


def test_a_version_registered_while_the_first_still_deploys_rolls_out_against_it():
    # A TrainingJob registers v1; a CompressionJob registers v2 moments later, before
    # v1's pods are ready: v2 must canary against v1, not replace it.
    roles = assign_roles(_views(v1="Progressing", v2=None))
    assert roles.stable and roles.stable.version == "v1"
    assert roles.candidate and roles.candidate.version == "v2"
    assert roles.retired == ()
    three = assign_roles(_views(v1="Progressing", v2="Progressing", v3=None))
    assert three.stable and three.stable.version == "v1"
    assert [(r.view.version, r.reason) for r in three.retired] == [("v2", "Replaced")]


def test_versions_are_ordered_number_by_number():
    ordered = ["1", "v1.2", "1.9", "1.10", "v2", "10"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    roles = assign_roles(_views(v1_9="Serving", v1_10="Pending"))
    assert roles.candidate and roles.candidate.version == "v1.10"


def test_rolling_back_the_serving_version_restores_the_one_before():
    views = [
        VersionView("digits-v1", "v1", "Superseded"),
        VersionView("digits-v2", "v2", "Superseded"),
        VersionView("digits-v3", "v3", "Serving", rollback=True),
    ]
    roles = assign_roles(views)
    assert roles.stable and roles.stable.version == "v2"
    assert roles.previous and roles.previous.version == "v1"
    assert [(r.view.version, r.phase, r.reason) for r in roles.retired] == [
        ("v1", "Superseded", "Superseded"),
        ("v3", "RolledBack", "ManualRollback"),
    ]


def test_a_rolled_back_version_is_never_restored():
    views = [
        VersionView("digits-v1", "v1", "Superseded"),
        VersionView("digits-v2", "v2", "Superseded", rollback=True),
        VersionView("digits-v3", "v3", "Serving", deleting=True),
    ]
    roles = assign_roles(views)
    assert roles.stable and roles.stable.version == "v1"


def test_rollback_without_a_previous_version_keeps_the_model_served():
    roles = assign_roles([VersionView("digits-v1", "v1", "Serving", rollback=True)])
    assert roles.stable and roles.stable.version == "v1" and roles.retired == ()
