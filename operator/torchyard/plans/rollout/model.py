"""A model's next move, for all its versions at once. Pure.

The unit of reconciliation is the model (every ModelVersion with one spec.model): which
version serves, which rolls out and which are retired is a property of the set
(rollout.roles). `plan_model` takes what the controller read (the versions as the watch
holds them, their pods, the candidate's scraped counters, the time) and returns what to
apply: each version's replicas, the status fields that change, its Events, which
leaving version may go, and when to look again. The controller reads, scrapes and
applies; nothing here touches the API or a clock (kopf's causes.py: detect purely,
apply in one place).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from torchyard.admission import ACCEPTED, Event, admit
from torchyard.api.base import parse_time
from torchyard.api.kinds import MODEL_VERSION
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.conditions import Conditions, find_condition
from torchyard.plans.rollout import history
from torchyard.plans.rollout.analysis import Measurement, Scrape, measure
from torchyard.plans.rollout.quality import Compared
from torchyard.plans.rollout.replicas import replica_plan
from torchyard.plans.rollout.roles import Roles, VersionView, assign_roles, retirement_message
from torchyard.plans.rollout.steps import (
    FINAL_PHASES,
    QUALITY_REGRESSION,
    REGRESSED,
    WATCH_END_FIELD,
    Observed,
    PodFailure,
    RolloutDecision,
    RolloutState,
    decide,
)
from torchyard.podstatus import phase_of
from torchyard.refusals import Refusal
from torchyard.resources.serving import model_url

PERMANENT_EXIT = 3
"""Exit code of a serving container that cannot serve and must not be restarted."""
HANDOVER_LIMIT_SECONDS = 300.0
"""Longest a deleted serving version waits for the restored one before it goes anyway."""
ROLLBACK_REASONS = (
    "AnalysisFailed", QUALITY_REGRESSION, "ManualRollback", "Replaced", REGRESSED
)  # fmt: skip
"""The reasons ModelPlan.rollbacks can hold (rollout.steps and rollout.roles give them):
the operator's rollback counter has a series for each from a model's first reconcile."""


@dataclass(frozen=True)
class VersionObserved:
    """One ModelVersion as the controller read it."""

    body: Mapping[str, Any]
    """metadata (name, namespace, uid, generation, deletionTimestamp), spec and status."""
    spec: ModelVersionSpec | None
    """None when the spec does not parse: admission says why, nothing else is done."""
    pods: Sequence[Mapping[str, Any]] = ()
    """The pods of its own Deployment's ReplicaSets."""
    refusal: Refusal | None = None
    """Why its Deployment, its pods or the model's Service cannot be had, if so."""

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})

    @property
    def generation(self) -> int:
        return int(self.body["metadata"].get("generation") or 0)

    @property
    def deleting(self) -> bool:
        return bool(self.body["metadata"].get("deletionTimestamp"))


@dataclass(frozen=True)
class Window:
    """The candidate's analysis window: its pods' counters when it began, and now."""

    start: Mapping[str, Scrape] | None
    """None: no window yet; one begins now."""
    current: Mapping[str, Scrape]
    quality: Compared | None = None
    """The reference request's comparison, made for an analysis due now (rollout.quality)."""


@dataclass(frozen=True)
class ModelObserved:
    versions: Sequence[VersionObserved]
    now: datetime
    """Read once per reconcile: every time the plan writes is this one."""
    window: Window | None = None
    """The candidate's counters; None when there is no candidate."""
    served: Mapping[str, float] | None = None
    """Percent of the model's answers each version (by spec.version) gave since the
    routing weights last changed (rollout.served); None when not known (no router, too
    few answers yet): status then reports the weight asked for."""


@dataclass(frozen=True)
class VersionPlan:
    name: str
    replicas: int | None
    """Pods its Deployment should have; None: leave the Deployment as it is."""
    status: dict[str, Any]
    """The status fields that change; empty when nothing does (no write)."""
    events: tuple[Event, ...] = ()
    weight: float = 0.0
    """The share served (status.weight)."""
    desired_weight: int = 0
    """The share asked for (status.desiredWeight): what the router is told."""
    healthy: bool = True
    ready: int = 0
    """Its ready serving pods (status.readyReplicas)."""


@dataclass(frozen=True)
class ModelPlan:
    versions: tuple[VersionPlan, ...]
    release: tuple[str, ...] = ()
    """Leaving versions whose pods may go now (their finalizer is removed)."""
    window_start: Mapping[str, Scrape] | None = None
    """The candidate's window start from now on; None: no candidate, forget it."""
    analysis: str | None = None
    """Verdict of an analysis made by this plan (for the metric)."""
    awaits_quality: bool = False
    """The analysis made waits only for the reference request's answers (rollout.quality):
    the controller sends it and plans again."""
    rollbacks: tuple[str, ...] = ()
    """Reasons of the rollbacks this plan makes (for the metric)."""
    requeue_after: float | None = None
    """Seconds until something is due: a pause's end, an analysis, a hand-over limit."""

    def version(self, name: str) -> VersionPlan | None:
        return next((v for v in self.versions if v.name == name), None)


def views(versions: Sequence[VersionObserved]) -> list[VersionView]:
    """The valid versions as rollout.roles sees them."""
    return [
        VersionView(
            name=v.name,
            version=v.spec.version,
            phase=v.status.get("phase"),
            deleting=v.deleting,
            rollback=v.spec.rollback,
        )
        for v in versions
        if v.spec is not None
    ]


def candidate_of(versions: Sequence[VersionObserved]) -> str | None:
    """The name of the version under rollout."""
    candidate = assign_roles(views(versions)).candidate
    return candidate.name if candidate else None


def analysed_of(versions: Sequence[VersionObserved]) -> str | None:
    """The name of the version whose pods the controller scrapes for an analysis: the
    one under rollout, or else the serving one while it is watched after promotion."""
    roles = assign_roles(views(versions))
    if roles.candidate is not None:
        return roles.candidate.name
    return roles.stable.name if _watched(roles, versions) else None


def baseline_of(versions: Sequence[VersionObserved]) -> str | None:
    """The name of the version the analysed one is compared with (rollout.quality): the
    serving one during a rollout; None during the watch after promotion, when the version
    replaced serves no pods (only accuracy, against labels, is judged then)."""
    roles = assign_roles(views(versions))
    return roles.stable.name if roles.candidate is not None and roles.stable else None


def _watched(roles: Roles, versions: Sequence[VersionObserved]) -> bool:
    if roles.stable is None or roles.candidate is not None or roles.previous is None:
        return False
    stable = next(v for v in versions if v.name == roles.stable.name)
    return stable.spec is not None and RolloutState.from_status(stable.status).watching(stable.spec)


def ready_pods(pods: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for pod in pods if pod_ready(pod))


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """Running and Ready, and not terminating: the pod takes new inference requests. A
    terminating pod may still be Ready while it drains; like a ReplicaSet's readyReplicas,
    it is not counted (its EndpointSlice entry is not ready either)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return phase_of(dict(pod)) == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def pod_failure(pods: Sequence[Mapping[str, Any]]) -> PodFailure | None:
    """A permanent failure a serving container reported (exit 3, reason in its message)."""
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            for state in (container.get("state") or {}, container.get("lastState") or {}):
                ended = state.get("terminated")
                if ended and ended.get("exitCode") == PERMANENT_EXIT:
                    try:
                        said = json.loads(ended.get("message") or "{}")
                    except ValueError:
                        said = {}
                    return PodFailure(
                        str(said.get("reason") or "ServingFailed"),
                        str(said.get("message") or ended.get("message") or "the server exited"),
                    )
    return None


def recorded_failure(status: Mapping[str, Any], phase: str) -> PodFailure | None:
    """The failure a Failed version's pods reported, as its Healthy condition recorded it
    when the version failed: a Failed version runs no pods, and their going must not
    make it healthy again."""
    if phase != "Failed":
        return None
    healthy = find_condition(status.get("conditions") or [], "Healthy") or {}
    if healthy.get("status") != "False":
        return None
    return PodFailure(
        str(healthy.get("reason") or "ServingFailed"), str(healthy.get("message") or "")
    )


@dataclass
class _Draft:
    """What the plan has decided so far for one version, before its status is composed."""

    replicas: int | None = None
    patch: dict[str, Any] = field(default_factory=dict)
    conditions: list[tuple[str, bool, str, str]] = field(default_factory=list)
    """Conditions the rollout sets (type, ok, reason, message), in order."""
    events: list[Event] = field(default_factory=list)


def plan_model(observed: ModelObserved) -> ModelPlan:
    """What to apply to the model's versions now (see the module docstring)."""
    now = observed.now
    valid = {v.name: v for v in observed.versions if v.spec is not None}
    roles = assign_roles(views(observed.versions))
    drafts = {name: _Draft() for name in valid}
    rollbacks: list[str] = []
    candidate = _plan_candidate(roles, valid, drafts, observed)
    _plan_stable(roles, valid, drafts)
    if roles.candidate is None:
        candidate = _plan_watched(roles, valid, drafts, observed)
    stable_ready = ready_pods(valid[roles.stable.name].pods) if roles.stable else 0
    for retired in roles.retired:
        draft = drafts[retired.view.name]
        version = valid[retired.view.name]
        # Hand-over without a gap: a version leaving the stable role (rolled back by
        # hand, or superseded when the stable one is restored) keeps its ready pods
        # until the stable version has one of its own.
        draft.replicas = 0 if stable_ready else ready_pods(version.pods)
        draft.patch.update(phase=retired.phase, weight=0)
        if roles.stable is not None:
            draft.patch["stableVersion"] = roles.stable.version
        if retired.view.phase != retired.phase:
            if retired.phase == "RolledBack":
                rollbacks.append(retired.reason)
            message = retirement_message(retired, roles.stable, roles.candidate)
            draft.conditions.append(("Progressing", False, retired.reason, message))
            draft.events.append(Event("Normal", retired.reason, message))
    plans = [
        _version_plan(v, drafts.get(v.name), now, observed.served)
        for v in observed.versions
        if not v.deleting
    ]
    plans = _with_history(observed, plans)
    release, handover = _releases(observed, roles, stable_ready)
    # Roles follow from phases: a version that changes phase here (the first one
    # serving, a promoted one taking over) changes what the others should do, which
    # the next plan decides from the phases written now, at once.
    moved = any("phase" in plan.status for plan in plans)
    return ModelPlan(
        versions=tuple(plans),
        release=release,
        window_start=candidate.window_start,
        analysis=candidate.analysis,
        awaits_quality=candidate.awaits_quality,
        rollbacks=(*candidate.rollbacks, *rollbacks),
        requeue_after=_soonest(candidate.requeue_after, handover, 0.0 if moved else None),
    )


@dataclass(frozen=True)
class _CandidateOutcome:
    window_start: Mapping[str, Scrape] | None = None
    analysis: str | None = None
    awaits_quality: bool = False
    rollbacks: tuple[str, ...] = ()
    requeue_after: float | None = None


def _plan_candidate(
    roles: Roles,
    valid: Mapping[str, VersionObserved],
    drafts: Mapping[str, _Draft],
    observed: ModelObserved,
) -> _CandidateOutcome:
    """The version under rollout: its next step (rollout.decide) and the replicas it and
    the stable version get for the weight decided."""
    if roles.candidate is None or (version := valid[roles.candidate.name]).spec is None:
        return _CandidateOutcome()
    spec = version.spec
    stable = roles.stable
    stable_spec = valid[stable.name].spec if stable else None
    window = observed.window or Window(None, {})
    ready = ready_pods(version.pods)
    measurement = _measurement(window)
    failure = pod_failure(version.pods)
    decision = decide(
        spec,
        RolloutState.from_status(version.status),
        Observed(
            now=observed.now,
            ready_replicas=ready,
            measurement=measurement,
            previous_version=stable.version if stable else None,
            failure=failure,
        ),
    )
    plan = replica_plan(
        decision.weight,
        candidate_replicas=spec.serving.replicas,
        stable_replicas=stable_spec.serving.replicas if stable_spec else 0,
        candidate_ready=ready,
    )
    draft = drafts[version.name]
    draft.replicas = plan.candidate
    if stable is not None:
        drafts[stable.name].replicas = plan.stable
    draft.patch.update(
        decision.state.to_status(),
        weight=decision.weight,
        previousVersion=stable.version if stable else None,
        stableVersion=stable.version if stable else None,
    )
    if decision.reason is not None:
        progressing = decision.state.phase in ("Progressing", "Paused")
        message = decision.message or ""
        draft.conditions.append(("Progressing", progressing, decision.reason, message))
    if failure is not None and failure.reason == "DigestMismatch":
        draft.conditions.append(("ArtifactVerified", False, failure.reason, failure.message))
    draft.events.extend(decision.events)
    return _outcome(decision, window)


def _plan_watched(
    roles: Roles,
    valid: Mapping[str, VersionObserved],
    drafts: Mapping[str, _Draft],
    observed: ModelObserved,
) -> _CandidateOutcome:
    """The serving version while it is watched after promotion (rollout.steps): its
    analysis, and its rollback to the previous version if it regressed."""
    if not _watched(roles, list(valid.values())):
        return _CandidateOutcome()
    assert roles.stable is not None and roles.previous is not None
    version = valid[roles.stable.name]
    assert version.spec is not None
    window = observed.window or Window(None, {})
    decision = decide(
        version.spec,
        RolloutState.from_status(version.status),
        Observed(
            now=observed.now,
            ready_replicas=ready_pods(version.pods),
            measurement=_measurement(window),
            previous_version=roles.previous.version,
        ),
    )
    draft = drafts[version.name]
    draft.patch.update(decision.state.to_status())
    if decision.state.phase == "RolledBack":
        # Its pods stay until the restored version has ready ones: the next plan,
        # made at once, hands over (roles.retired).
        draft.patch["weight"] = 0
    if decision.reason is not None:
        draft.conditions.append(("Progressing", False, decision.reason, decision.message or ""))
    draft.events.extend(decision.events)
    return _outcome(decision, window)


def _measurement(window: Window) -> Measurement | None:
    if window.start is None or not window.current:
        return None
    return replace(measure(dict(window.start), dict(window.current)), quality=window.quality)


def _outcome(decision: RolloutDecision, window: Window) -> _CandidateOutcome:
    restart = decision.restart_window or window.start is None
    return _CandidateOutcome(
        window_start=dict(window.current) if restart else window.start,
        analysis=decision.analysis.verdict if decision.analysis is not None else None,
        awaits_quality=decision.analysis is not None and decision.analysis.awaits_quality,
        rollbacks=(decision.reason or "Rollback",) if decision.state.phase == "RolledBack" else (),
        requeue_after=decision.requeue_after,
    )


def _plan_stable(
    roles: Roles, valid: Mapping[str, VersionObserved], drafts: Mapping[str, _Draft]
) -> None:
    """The version that serves: the traffic the candidate does not get."""
    stable = roles.stable
    if stable is None:
        return
    version, draft = valid[stable.name], drafts[stable.name]
    assert version.spec is not None
    if draft.replicas is None:
        draft.replicas = version.spec.serving.replicas
    if version.spec.rollback:
        draft.patch["message"] = (
            f"spec.rollback is set but version {stable.version} has no previous version to "
            "return to: it keeps serving"
        )
    candidate_weight = drafts[roles.candidate.name].patch.get("weight", 0) if roles.candidate else 0
    draft.patch.update(
        phase="Serving",
        weight=100 - candidate_weight,
        stableVersion=stable.version,
        previousVersion=roles.previous.version if roles.previous else None,
    )


def _releases(
    observed: ModelObserved, roles: Roles, stable_ready: int
) -> tuple[tuple[str, ...], float | None]:
    """Which leaving versions may go now, and when to look again at the others.

    Deleting the serving version (from Git) restores the previous one; it keeps its pods
    until the restored version has a ready pod, so the model never stops answering, and
    at most HANDOVER_LIMIT_SECONDS."""
    release: list[str] = []
    waits: list[float] = []
    for version in observed.versions:
        if not version.deleting:
            continue
        deleted = parse_time(version.body["metadata"]["deletionTimestamp"])
        waited = (observed.now - deleted).total_seconds()
        handing_over = version.status.get("phase") == "Serving" and roles.stable is not None
        if not handing_over or stable_ready > 0 or waited >= HANDOVER_LIMIT_SECONDS:
            release.append(version.name)
        else:
            waits.append(HANDOVER_LIMIT_SECONDS - waited)
    return tuple(release), (min(waits) if waits else None)


def _version_plan(
    version: VersionObserved,
    draft: _Draft | None,
    now: datetime,
    served: Mapping[str, float] | None,
) -> VersionPlan:
    """The version's whole status (admission, conditions, figures) and what changes."""
    metadata, status = version.body["metadata"], version.status
    verdict = admit(
        MODEL_VERSION, dict(version.body.get("spec") or {}), status, version.generation, now
    )
    if version.spec is None or draft is None:
        changed = _changed(status, verdict.status_patch)
        return VersionPlan(version.name, None, changed, tuple(verdict.events))
    spec = version.spec
    stored = status.get("conditions") or []
    conditions = Conditions(verdict.status_patch["conditions"], version.generation, now, stored)

    def put(type: str, ok: bool, reason: str, message: str) -> None:
        conditions.set(type, "True" if ok else "False", reason, message)

    for type, ok, reason, message in draft.conditions:
        if type != ACCEPTED:  # admission's
            put(type, ok, reason, message)
    merged = {**status, **draft.patch}
    # The plan's weight is the one asked for; status.weight says what was served.
    asked = draft.patch.get("weight", status.get("desiredWeight", status.get("weight")))
    desired_weight = int(asked or 0)
    served_weight = desired_weight
    if served is not None:
        served_weight = round(served.get(spec.version, 0.0))
    ready = ready_pods(version.pods)
    desired = draft.replicas or 0
    phase = merged.get("phase") or "Pending"
    failure = pod_failure(version.pods) or recorded_failure(status, phase)

    if ready:
        verified = f"{spec.artifact.digest[:19]} verified by the serving pods"
        put("ArtifactVerified", True, "DigestMatches", verified)
    available = "ReplicasReady" if ready else "NoReadyReplicas"
    put("Available", ready > 0, available, f"{ready}/{desired} serving pods ready")
    serving = phase == "Serving" and ready > 0
    put(
        "Ready",
        serving,
        "Serving" if serving else phase,
        _ready_message(spec, phase, ready, failure, conditions),
    )
    if version.refusal is not None:
        # Its Deployment or the model's Service cannot be created (or is another's).
        refusal = version.refusal
        conditions.refused("Ready", refusal)
        if not ready:
            put("Available", False, refusal.reason, refusal.message)
    healthy = failure is None and (merged.get("analysis") or {}).get("verdict") != "Fail"
    if healthy:
        put("Healthy", True, "Healthy", "no failed analysis")
    elif failure is not None:
        put("Healthy", False, failure.reason, failure.message)
    else:
        put("Healthy", False, "AnalysisFailed", "the last analysis failed")
    update = {
        **draft.patch,
        "weight": served_weight if asked is not None else None,
        "desiredWeight": desired_weight if asked is not None else None,
        "phase": phase,
        "observedGeneration": version.generation,
        "conditions": conditions.list,
        "readyReplicas": ready,
        "desiredReplicas": desired,
        "url": model_url(spec.model, metadata["namespace"]),
    }
    update = {key: value for key, value in update.items() if value is not None}
    if phase != "Serving" and status.get(WATCH_END_FIELD) is not None:
        # A watch belongs to one promotion: a version that stops serving drops it, so
        # that a restored version is never watched on an old promotion's account.
        update[WATCH_END_FIELD] = None
    return VersionPlan(
        version.name,
        draft.replicas,
        _changed(status, update),
        (*verdict.events, *draft.events, *conditions.events),
        weight=float(served_weight),
        desired_weight=desired_weight,
        healthy=healthy,
        ready=ready,
    )


def _ready_message(
    spec: ModelVersionSpec,
    phase: str,
    ready: int,
    failure: PodFailure | None,
    conditions: Conditions,
) -> str:
    if phase == "Serving" and ready > 0:
        return f"version {spec.version} answers inference requests"
    if failure:
        return failure.message
    progressing = conditions.find("Progressing") or {}
    if phase in FINAL_PHASES and progressing.get("message"):
        return str(progressing["message"]) + (f" (ready pods left: {ready})" if ready else "")
    if phase == "Serving":
        return f"version {spec.version} serves the model once its pods are ready ({ready} ready)"
    return f"phase {phase}, {ready} pods ready"


def _with_history(observed: ModelObserved, plans: list[VersionPlan]) -> list[VersionPlan]:
    """The plans with the model's rollout history (rollout.history) in every valid
    version's status, with an entry for each version this plan moves to an outcome."""
    by_name = {v.name: v for v in observed.versions}
    made = []
    for plan in plans:
        version = by_name[plan.name]
        if version.spec is not None and "phase" in plan.status:
            now_status = {**version.status, **plan.status}
            found = history.entry(version.spec.version, now_status, observed.now)
            if found is not None:
                made.append(found)
    carried = [v.status.get("history") or [] for v in observed.versions]
    model_history = history.merged(carried, made)
    if not model_history:
        return plans
    return [
        replace(plan, status={**plan.status, "history": model_history})
        if by_name[plan.name].spec is not None
        and by_name[plan.name].status.get("history") != model_history
        else plan
        for plan in plans
    ]


def _changed(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in update.items() if current.get(key) != value}


def _soonest(*delays: float | None) -> float | None:
    known = [delay for delay in delays if delay is not None]
    return min(known) if known else None
