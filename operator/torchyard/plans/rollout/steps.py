"""The next move of one ModelVersion: its rollout steps, analysis, promotion, rollback.

Pure: the controller passes the spec, the state it read from status and what it observed
(time included) and gets back the new state, the weight to serve at, what to say and
when to look again. It never reads a clock or talks to the API.

Semantics (Argo Rollouts and Flagger are the anchors):

- A model's first version has nothing to protect or compare with: it serves as soon as
  its replicas are ready, without steps.
- A newer version walks `spec.rollout.steps`. A `setWeight` step is done when the pods
  for that weight are ready and an analysis *at that weight* has passed (a bad version
  is caught at 20 %, before it gets 50 %); weight 0 needs no analysis. A timed `pause`
  holds the weight for its duration, counted from when the weight was really served; a
  pause without duration holds until `spec.promote`. After the last step the version
  goes to 100 % and is `Serving` once all its replicas are ready.
- Analysis runs every `intervalSeconds` whenever the version gets traffic, paused or
  not. Inconclusive never passes a step and never counts as a failure; `failureLimit`
  failures roll back at once with the failing figures in the message.
- Manual controls come from the spec (GitOps): `rollback` wins over everything and needs
  no steps or analysis; `promote` skips the remaining steps and analysis; `paused` holds
  the current step while analysis goes on.
- After its rollout promotes it, a version is watched for `afterPromotionSeconds` (Argo
  Rollouts' post-promotion analysis, Flagger's): analysis goes on at every interval, and
  `failureLimit` failures in that time roll it back to the version it replaced
  (RegressedAfterPromotion). `spec.promote` skips analysis, so it skips the watch too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from torchyard.admission import Event
from torchyard.api.base import parse_time, rfc3339
from torchyard.api.modelversion import ModelVersionPhase, ModelVersionSpec, RolloutStep
from torchyard.plans.rollout.analysis import Analysis, Measurement, analyse
from torchyard.plans.rollout.replicas import replicas_for

FINAL_PHASES = ("Superseded", "RolledBack", "Failed")
STEP_START_FIELD = "stepStartTime"
"""status field the step's start is kept in (ModelVersionStatus.step_start_time)."""
WATCH_END_FIELD = "watchedUntil"
"""status field the end of the watch after promotion is kept in."""
REGRESSED = "RegressedAfterPromotion"
"""Reason of a rollback by the watch after promotion."""
QUALITY_REGRESSION = "QualityRegression"
"""The reason of a rollout's rollback whose last analysis failed on its quality score
alone: it answered without errors, in time, but worse than the serving version (or than
the labels)."""
POLL_SECONDS = 5.0
"""How soon to look again while waiting for pods (their changes also wake the controller)."""


@dataclass(frozen=True)
class PodFailure:
    """A permanent failure the version's serving pods reported (termination message)."""

    reason: str
    """CamelCase, e.g. DigestMismatch or ModelLoadError."""
    message: str


@dataclass(frozen=True)
class RolloutState:
    """What the decision needs to remember between two reconciliations (kept in status)."""

    phase: ModelVersionPhase | None = None
    step: int = 0
    """Index of the step in progress; len(steps) once all are done (promotion)."""
    step_started: datetime | None = None
    """When the current step's weight was first really served."""
    failures: int = 0
    """Failed analyses so far in this rollout."""
    analysis: Analysis | None = None
    """The latest analysis."""
    watched_until: datetime | None = None
    """A promoted version is analysed until then (the watch after promotion)."""

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> RolloutState:
        """Read the state from a ModelVersion's status (wire form, camelCase)."""
        started, watched = status.get(STEP_START_FIELD), status.get(WATCH_END_FIELD)
        return cls(
            phase=status.get("phase"),
            step=int(status.get("currentStep") or 0),
            step_started=None if started is None else parse_time(started),
            failures=int((status.get("analysis") or {}).get("failures") or 0),
            analysis=Analysis.from_status(status.get("analysis")),
            watched_until=None if watched is None else parse_time(watched),
        )

    def watching(self, spec: ModelVersionSpec) -> bool:
        """Whether the serving version is under its watch after promotion: an analysis of
        the watch is still due at or before its end (however late it runs), the spec
        still asks for a watch, and spec.promote has not ended it."""
        end = watch_end(spec, self)
        if self.phase != "Serving" or end is None or spec.promote:
            return False
        return _next_watch_analysis(self, spec.rollout.analysis.interval_seconds) <= end

    def to_status(self) -> dict[str, Any]:
        """The status fields this state lives in (wire form, camelCase)."""
        patch: dict[str, Any] = {"phase": self.phase, "currentStep": self.step}
        if self.step_started is not None:
            patch[STEP_START_FIELD] = rfc3339(self.step_started)
        if self.analysis is not None:
            patch["analysis"] = self.analysis.to_status(self.failures)
        if self.watched_until is not None:
            patch[WATCH_END_FIELD] = rfc3339(self.watched_until)
        return patch


@dataclass(frozen=True)
class Observed:
    """What the controller saw of the version and its model just now."""

    now: datetime
    ready_replicas: int = 0
    """This version's serving pods that are ready (answer inference requests)."""
    measurement: Measurement | None = None
    """The version's figures since the window began (see RolloutDecision.restart_window);
    None when its pods could not be scraped."""
    previous_version: str | None = None
    """The version that serves the model now and takes the traffic back on rollback
    (rollout.roles); None for the model's first version."""
    failure: PodFailure | None = None


@dataclass(frozen=True)
class RolloutDecision:
    """The next move: new state, the weight to serve at, what to say, when to look again."""

    state: RolloutState
    weight: int
    """Percent of the model's traffic wanted for this version (rollout.replica_plan)."""
    reason: str | None
    """CamelCase reason for the Progressing condition; None: nothing new, keep it."""
    message: str | None
    events: tuple[Event, ...] = ()
    """Events for transitions (a person would want them in kubectl describe)."""
    analysis: Analysis | None = None
    """The analysis that ran in this decision, if one did."""
    restart_window: bool = False
    """Begin a new measurement window now (scrape the pods' counters as its start)."""
    requeue_after: float | None = None
    """Seconds until something is due (analysis, end of a pause, pods); None: nothing."""


def decide(spec: ModelVersionSpec, state: RolloutState, observed: Observed) -> RolloutDecision:
    """The next move of the version `spec` describes."""
    if state.phase in FINAL_PHASES:
        return RolloutDecision(state, 0, None, None)
    if spec.rollback:
        return _manual_rollback(spec, state, observed)
    if state.phase == "Serving":
        return _watch(spec, state, observed)
    if observed.failure is not None:
        return _failed(spec, state, observed, observed.failure)
    if observed.previous_version is None:
        return _deploy_first(spec, state, observed)
    if spec.promote:
        return _promote(spec, state, observed, (), manual=True)
    return _progress(spec, state, observed)


def watch_end(spec: ModelVersionSpec, state: RolloutState) -> datetime | None:
    """When the watch after promotion ends: as set at promotion, or sooner if the spec's
    afterPromotionSeconds was lowered since (0 ends it)."""
    if state.watched_until is None or state.step_started is None:
        return None
    asked = state.step_started + timedelta(seconds=spec.rollout.analysis.after_promotion_seconds)
    return min(state.watched_until, asked)


def step_weight(steps: list[RolloutStep], index: int) -> int:
    """The weight in force at step `index`: the last setWeight up to it; 100 past the end."""
    if index >= len(steps):
        return 100
    weights = [step.set_weight for step in steps[: index + 1] if step.set_weight is not None]
    return weights[-1] if weights else 0


def _manual_rollback(
    spec: ModelVersionSpec, state: RolloutState, observed: Observed
) -> RolloutDecision:
    if observed.previous_version is None:
        # Nothing to return to: taking the model offline is not what rollback means.
        message = (
            f"spec.rollback is set but version {spec.version} is the model's first version: "
            "there is no previous version to roll back to, so it keeps serving"
        )
        held = decide(spec.model_copy(update={"rollback": False}), state, observed)
        return replace(
            held,
            reason="NoRollbackTarget",
            message=message,
            events=(*held.events, Event("Warning", "NoRollbackTarget", message)),
        )
    message = (
        f"rolled back by spec.rollback: traffic returned at once to version "
        f"{observed.previous_version} (no steps, no analysis)"
    )
    return RolloutDecision(
        replace(state, phase="RolledBack"),
        0,
        "ManualRollback",
        message,
        (Event("Warning", "RolledBack", message),),
    )


def _failed(
    spec: ModelVersionSpec, state: RolloutState, observed: Observed, failure: PodFailure
) -> RolloutDecision:
    serving = (
        f"version {observed.previous_version} keeps serving"
        if observed.previous_version
        else "the model has no serving version"
    )
    message = f"version {spec.version} cannot serve: {failure.message}; {serving}"
    return RolloutDecision(
        replace(state, phase="Failed"),
        0,
        failure.reason,
        message,
        (Event("Warning", failure.reason, message),),
    )


def _deploy_first(
    spec: ModelVersionSpec, state: RolloutState, observed: Observed
) -> RolloutDecision:
    replicas = spec.serving.replicas
    if observed.ready_replicas >= replicas:
        message = (
            f"version {spec.version} serves the model with {replicas} ready replicas "
            "(the model's first version: no rollout steps)"
        )
        return RolloutDecision(
            replace(state, phase="Serving", step=len(spec.rollout.steps)),
            100,
            "Serving",
            message,
            (Event("Normal", "Serving", message),),
        )
    started = state.phase not in (None, "Pending")
    message = f"deploying: {observed.ready_replicas} of {replicas} replicas ready"
    return RolloutDecision(
        replace(state, phase="Progressing"),
        100,
        "Deploying",
        message,
        () if started else (Event("Normal", "Deploying", message),),
        requeue_after=POLL_SECONDS,
    )


def _promote(
    spec: ModelVersionSpec,
    state: RolloutState,
    observed: Observed,
    events: tuple[Event, ...],
    *,
    manual: bool,
    restart_window: bool = False,
) -> RolloutDecision:
    replicas = spec.serving.replicas
    how = (
        "promoted by spec.promote: the remaining steps and analysis were skipped"
        if manual
        else f"passed all {len(spec.rollout.steps)} rollout steps"
    )
    state = replace(state, step=len(spec.rollout.steps))
    if observed.ready_replicas >= replicas:
        message = (
            f"version {spec.version} {how} and serves the model; version "
            f"{observed.previous_version} is superseded"
        )
        watch = spec.rollout.analysis.after_promotion_seconds
        if watch and not manual:
            until = observed.now + timedelta(seconds=watch)
            # The watch counts its own failures, in windows from now.
            state = replace(state, watched_until=until, failures=0, step_started=observed.now)
            message += f"; it is watched until {rfc3339(until)} and rolled back if it regresses"
        return RolloutDecision(
            replace(state, phase="Serving"),
            100,
            "Promoted",
            message,
            (*events, Event("Normal", "Promoted", message)),
            analysis=None,
            restart_window=restart_window or bool(state.watched_until),
            requeue_after=_seconds_until(
                observed.now,
                _next_analysis(state, spec.rollout.analysis.interval_seconds)
                if state.watched_until
                else None,
            ),
        )
    message = (
        f"version {spec.version} {how}; promoting: {observed.ready_replicas} of {replicas} "
        f"replicas ready, version {observed.previous_version} keeps its pods until then"
    )
    return RolloutDecision(
        replace(state, phase="Progressing"),
        100,
        "Promoting",
        message,
        events,
        restart_window=restart_window,
        requeue_after=POLL_SECONDS,
    )


def _progress(spec: ModelVersionSpec, state: RolloutState, observed: Observed) -> RolloutDecision:
    now = observed.now
    steps = spec.rollout.steps
    limits = spec.rollout.analysis
    events: list[Event] = []
    restart = False
    if state.phase in (None, "Pending") or state.step_started is None:
        state = RolloutState(phase="Progressing", step=0, step_started=now)
        events.append(
            Event(
                "Normal",
                "RolloutStarted",
                f"rolling out version {spec.version} in {len(steps)} steps; version "
                f"{observed.previous_version} serves the rest of the traffic",
            )
        )
        restart = True
    was_paused = state.phase == "Paused"

    weight, in_effect = _weight_in_effect(spec, state, observed)
    if not in_effect:
        # A step's clock starts when its weight is really served, not when it was asked for.
        state, restart = replace(state, step_started=now), True

    ran: Analysis | None = None
    if in_effect and weight > 0 and now >= _next_analysis(state, limits.interval_seconds):
        ran = analyse(observed.measurement, limits, now)
        earlier = state.analysis.verdict if state.analysis else None
        failures = state.failures + (ran.verdict == "Fail")
        state, restart = replace(state, analysis=ran, failures=failures), True
        if ran.verdict == "Fail" and failures >= limits.failure_limit:
            message = (
                f"analysis failed {failures} times (failureLimit {limits.failure_limit}): "
                f"{ran.message}; traffic returned at once to version {observed.previous_version}"
            )
            return RolloutDecision(
                replace(state, phase="RolledBack"),
                0,
                QUALITY_REGRESSION if ran.failed_on == ("quality",) else "AnalysisFailed",
                message,
                (*events, Event("Warning", "RolledBack", message)),
                analysis=ran,
                restart_window=True,
            )
        if ran.verdict == "Fail":
            events.append(
                Event(
                    "Warning",
                    "AnalysisFailed",
                    f"analysis failed ({failures} of {limits.failure_limit} allowed): "
                    f"{ran.message}",
                )
            )
        elif ran.verdict == "Inconclusive" and earlier != "Inconclusive":
            events.append(Event("Normal", "AnalysisInconclusive", ran.message))

    if spec.paused:
        message = (
            f"paused by spec.paused at step {state.step + 1} of {len(steps)} "
            f"({weight}% weight); analysis goes on"
        )
        if not was_paused:
            events.append(Event("Normal", "Paused", message))
        return RolloutDecision(
            replace(state, phase="Paused"),
            weight,
            "Paused",
            message,
            tuple(events),
            analysis=ran,
            restart_window=restart,
            requeue_after=_seconds_until(
                now, _next_analysis(state, limits.interval_seconds) if weight else None
            ),
        )

    while True:
        if state.step >= len(steps):
            return replace(
                _promote(spec, state, observed, tuple(events), manual=False, restart_window=True),
                analysis=ran,
            )
        waiting = _waiting_for(spec, state, observed, weight, in_effect)
        if waiting is not None:
            break
        events.append(
            Event(
                "Normal",
                "StepCompleted",
                f"step {state.step + 1} of {len(steps)} ({_describe(steps[state.step])}) done",
            )
        )
        state, restart = replace(state, step=state.step + 1, step_started=now), True
        weight, in_effect = _weight_in_effect(spec, state, observed)

    reason, text, due = waiting
    indefinite = reason == "PausedUntilPromoted"
    if was_paused and not indefinite:
        events.append(Event("Normal", "Resumed", f"rollout of version {spec.version} resumed"))
    message = f"step {state.step + 1} of {len(steps)}: {text}"
    if state.analysis is not None and state.analysis.message:
        message += f"; last analysis {state.analysis.verdict}: {state.analysis.message}"
    next_analysis = _next_analysis(state, limits.interval_seconds) if weight and in_effect else None
    return RolloutDecision(
        replace(state, phase="Paused" if indefinite else "Progressing"),
        weight,
        reason,
        message,
        tuple(events),
        analysis=ran,
        restart_window=restart,
        requeue_after=_seconds_until(now, next_analysis, due),
    )


def _watch(spec: ModelVersionSpec, state: RolloutState, observed: Observed) -> RolloutDecision:
    """A serving version: analysed at every interval while it is under its watch after
    promotion, and rolled back to the version it replaced at failureLimit failures."""
    now, limits = observed.now, spec.rollout.analysis
    if not state.watching(spec) or observed.previous_version is None:
        return RolloutDecision(state, 100, None, None)
    due = _next_watch_analysis(state, limits.interval_seconds)
    if now < due:
        return RolloutDecision(state, 100, None, None, requeue_after=_seconds_until(now, due))
    ran = analyse(observed.measurement, limits, now)
    failures = state.failures + (ran.verdict == "Fail")
    state = replace(state, analysis=ran, failures=failures)
    if ran.verdict == "Fail" and failures >= limits.failure_limit:
        message = (
            f"version {spec.version} regressed after promotion: analysis failed {failures} "
            f"times (failureLimit {limits.failure_limit}): {ran.message}; traffic returned to "
            f"version {observed.previous_version}"
        )
        return RolloutDecision(
            replace(state, phase="RolledBack", watched_until=None),
            0,
            REGRESSED,
            message,
            (Event("Warning", "RolledBack", message),),
            analysis=ran,
            restart_window=True,
        )
    events: tuple[Event, ...] = ()
    if ran.verdict == "Fail":
        said = f"analysis after promotion failed ({failures} of {limits.failure_limit} allowed)"
        events = (Event("Warning", "AnalysisFailed", f"{said}: {ran.message}"),)
    return RolloutDecision(
        state,
        100,
        None,
        None,
        events,
        analysis=ran,
        restart_window=True,
        requeue_after=_seconds_until(now, _next_watch_analysis(state, limits.interval_seconds)),
    )


def _weight_in_effect(
    spec: ModelVersionSpec, state: RolloutState, observed: Observed
) -> tuple[int, bool]:
    weight = step_weight(spec.rollout.steps, state.step)
    return weight, observed.ready_replicas >= replicas_for(weight, spec.serving.replicas)


def _waiting_for(
    spec: ModelVersionSpec, state: RolloutState, observed: Observed, weight: int, in_effect: bool
) -> tuple[str, str, datetime | None] | None:
    """Why the current step is not done (reason, text, when it may be), or None if done."""
    step = spec.rollout.steps[state.step]
    if not in_effect:
        wanted = replicas_for(weight, spec.serving.replicas)
        text = (
            f"waiting for {wanted} ready replicas for {weight}% weight "
            f"({observed.ready_replicas} ready)"
        )
        return "WaitingForReplicas", text, observed.now + timedelta(seconds=POLL_SECONDS)
    if step.pause is not None:
        if step.pause.duration_seconds is None:
            return "PausedUntilPromoted", f"holding {weight}% until spec.promote is set", None
        assert state.step_started is not None
        end = state.step_started + timedelta(seconds=step.pause.duration_seconds)
        if observed.now < end:
            left = int((end - observed.now).total_seconds())
            return "PauseStep", f"holding {weight}% for {left} s more", end
        return None
    passed = (
        state.analysis is not None
        and state.analysis.verdict == "Pass"
        and state.step_started is not None
        and state.analysis.time > state.step_started
    )
    if weight == 0 or passed:
        return None
    return "WaitingForAnalysis", f"at {weight}% weight, waiting for a passing analysis", None


def _next_analysis(state: RolloutState, interval_seconds: int) -> datetime:
    """Analyses are `interval` apart, and the first of a step `interval` after it began."""
    assert state.step_started is not None
    start = state.step_started
    if state.analysis is not None and state.analysis.time > start:
        start = state.analysis.time
    return start + timedelta(seconds=interval_seconds)


def _next_watch_analysis(state: RolloutState, interval_seconds: int) -> datetime:
    """The watch's analyses are due on a grid from its start (promotion + k intervals),
    however late each one ran: a late one does not push the last one past the end."""
    assert state.step_started is not None
    start, done = state.step_started, 0
    if state.analysis is not None and state.analysis.time > start:
        done = int((state.analysis.time - start).total_seconds() // interval_seconds)
    return start + timedelta(seconds=interval_seconds * (done + 1))


def _seconds_until(now: datetime, *moments: datetime | None) -> float | None:
    future = [(moment - now).total_seconds() for moment in moments if moment is not None]
    return max(min(future), 0.0) if future else None


def _describe(step: RolloutStep) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    assert step.pause is not None
    if step.pause.duration_seconds is None:
        return "pause until promoted"
    return f"pause {step.pause.duration_seconds} s"
