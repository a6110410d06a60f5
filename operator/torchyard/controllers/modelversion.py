"""Handlers for ModelVersion: serving Deployments, progressive rollout, rollback.

Roles involve every version of a model, so the unit of reconciliation is the model:
any change to one of its versions, their Deployments or pods, or a clock tick,
reconciles the whole model. Decisions are pure (torchyard.rollout); this module reads,
scrapes the candidate's pods for the analysis window, and applies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import kopf
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.types import PatchType
from pydantic import TypeAdapter

from torchyard.admission import ACCEPTED, Event, admit
from torchyard.api.base import GROUP, VERSION, Timestamp, now
from torchyard.api.kinds import MODEL_VERSION
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.conditions import find_condition, set_condition
from torchyard.controllers import client
from torchyard.controllers.children import changed_fields, owned_entry
from torchyard.controllers.scrape import scrape_pods
from torchyard.metrics import ANALYSES, ROLLBACKS, VERSION_HEALTHY, VERSION_WEIGHT, reconciling
from torchyard.podstatus import phase_of
from torchyard.refusals import Backoff, Refusal, controller_uid, pods_refused, warnings
from torchyard.resources.pods import MANAGED_BY
from torchyard.resources.serving import (
    MODEL_LABEL,
    deployment_name,
    model_service,
    model_url,
    service_name,
    serving_deployment,
)
from torchyard.rollout import (
    FINAL_PHASES,
    Observed,
    PodFailure,
    RolloutState,
    Scrape,
    VersionView,
    assign_roles,
    decide,
    measure,
    replica_plan,
    retirement_message,
)
from torchyard.validation import InvalidSpec, parse_spec

OWNER_LABEL = f"{GROUP}/modelversion"
PLURAL = MODEL_VERSION.plural
PERMANENT_EXIT = 3
HANDOVER_LIMIT_SECONDS = 300
"""Longest a deleted serving version waits for the restored one before it goes anyway."""
_TIME = TypeAdapter(Timestamp)
log = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
refused_creates = Backoff()
"""Deployments and model Services whose create was refused, keyed (namespace, model,
version name or SERVICE_KEY), until they are tried again; forgotten with the version."""
SERVICE_KEY = ""
# Start of each candidate's analysis window: its pods' counters when it began.
_windows: dict[tuple[str, str], dict[str, Scrape]] = {}


# A version's children are found by ownerReference uid, never by name or labels (the
# labels only narrow the watches): its Deployment by the version's uid, the Deployment's
# ReplicaSets by the Deployment's, their pods by theirs. A pod that only carries a
# version's labels is neither counted as ready nor scraped for the analysis.


@kopf.index("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
async def serving_pods(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return owned_entry("ReplicaSet", namespace, body)


@kopf.index("apps", "v1", "replicasets", labels={OWNER_LABEL: kopf.PRESENT})
async def serving_replicasets(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], str]:
    deployment = controller_uid(body, "Deployment")
    return {(namespace, deployment): str(body["metadata"]["uid"])} if deployment else {}


@kopf.index("apps", "v1", "deployments", labels={OWNER_LABEL: kopf.PRESENT})
async def serving_deployments(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return owned_entry(MODEL_VERSION.kind, namespace, body)


@kopf.index("v1", "services", labels={MODEL_LABEL: kopf.PRESENT})
async def model_services(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    """Model Services by name, with their owners: whose a `<model>-model` is decides."""
    metadata = body["metadata"]
    owners = [ref.get("uid") for ref in metadata.get("ownerReferences") or []]
    return {(namespace, name): {"owners": owners, "labels": dict(metadata.get("labels") or {})}}


@dataclass(frozen=True)
class Indexes:
    """What the watches hold about the serving children, by owner uid."""

    pods_by_replicaset: kopf.Index
    replicasets_by_deployment: kopf.Index
    deployments_by_version: kopf.Index
    services_by_name: kopf.Index

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Indexes:
        """From a kopf handler's keyword arguments."""
        return cls(
            kwargs["serving_pods"],
            kwargs["serving_replicasets"],
            kwargs["serving_deployments"],
            kwargs["model_services"],
        )

    def deployment(self, version: dict[str, Any]) -> dict[str, Any] | None:
        """The version's own serving Deployment, as the watch last saw it."""
        key = (version["metadata"]["namespace"], version["metadata"]["uid"])
        return next(iter(self.deployments_by_version.get(key, [])), None)

    def pods(self, version: dict[str, Any]) -> list[dict[str, Any]]:
        """The pods of the version's Deployment's ReplicaSets."""
        namespace = version["metadata"]["namespace"]
        deployment = self.deployment(version)
        if deployment is None:
            return []
        sets = self.replicasets_by_deployment.get((namespace, deployment["metadata"]["uid"]), [])
        return [pod for rs in sets for pod in self.pods_by_replicaset.get((namespace, rs), [])]

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next(iter(self.services_by_name.get((namespace, name), [])), None)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def model_version_changed(namespace: str, spec: kopf.Spec, **kwargs: Any) -> None:
    await reconcile_model(namespace, str(spec.get("model")), Indexes.of(kwargs))


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def model_version_deleted(
    namespace: str,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    **kwargs: Any,
) -> None:
    """Deleting the serving version (from Git) restores the previous one; the finalizer
    keeps the leaving version's pods until the restored version has a ready pod, so the
    model never stops answering."""
    stable, ready = await reconcile_model(namespace, str(spec.get("model")), Indexes.of(kwargs))
    if status.get("phase") != "Serving" or stable is None or ready > 0:
        return
    deleted = _TIME.validate_python(meta["deletionTimestamp"])
    if (now() - deleted).total_seconds() > HANDOVER_LIMIT_SECONDS:
        log.warning(
            "version %s leaves before version %s is ready (waited %d s)",
            spec.get("version"),
            stable,
            HANDOVER_LIMIT_SECONDS,
        )
        return
    raise kopf.TemporaryError(
        f"keeping version {spec.get('version')}'s pods until the restored version "
        f"({stable}) has a ready pod",
        delay=2,
    )


@kopf.on.event("apps", "v1", "deployments", labels={MODEL_LABEL: kopf.PRESENT})
@kopf.on.event("v1", "pods", labels={MODEL_LABEL: kopf.PRESENT})
async def serving_child_changed(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    await reconcile_model(namespace, labels[MODEL_LABEL], Indexes.of(kwargs))


@kopf.timer(GROUP, VERSION, PLURAL, interval=2.0)
async def model_version_clock(namespace: str, spec: kopf.Spec, **kwargs: Any) -> None:
    # Analyses, timed pauses and missed events are driven from here.
    await reconcile_model(namespace, str(spec.get("model")), Indexes.of(kwargs))


async def reconcile_model(namespace: str, model: str, indexes: Indexes) -> tuple[str | None, int]:
    """Reconcile every version of the model; return the stable version's name and its
    ready serving pods (None, 0 when no version is stable)."""
    async with _locks[(namespace, model)]:
        with reconciling(MODEL_VERSION.kind):
            try:
                return await _reconcile(namespace, model, indexes)
            except client.NamespaceGone:
                # The namespace is being deleted: nothing can be created there and every
                # version goes with it, so there is nothing to hand over or keep serving.
                return None, 0
            except ApiError as error:
                if error.status.code != 429:
                    raise
                # The API server asks to come back later (e.g. "storage is (re)initializing"
                # while a CRD is updated): a pause, not a failure worth a traceback.
                raise kopf.TemporaryError(
                    f"the API server asked to retry: {error.status.message}", delay=2
                ) from None


# The one function over the limit: its decisions move into a pure model-level plan
# (issue 15, ModelVersion on the job controllers' design).
async def _reconcile(  # noqa: C901
    namespace: str, model: str, indexes: Indexes
) -> tuple[str | None, int]:
    listed = client.api().list(client.RESOURCES[MODEL_VERSION.kind], namespace=namespace)
    bodies = [obj.to_dict() async for obj in listed]
    versions: dict[str, tuple[dict[str, Any], ModelVersionSpec]] = {}
    for body in bodies:
        if (body.get("spec") or {}).get("model") != model:
            continue
        try:
            versions[body["metadata"]["name"]] = (body, parse_spec(ModelVersionSpec, body["spec"]))
        except InvalidSpec:
            await _admit_only(body)
    if not versions:
        refused_creates.forget_where(lambda key: key[:2] != (namespace, model))
        return None, 0
    views = [
        VersionView(
            name=name,
            version=spec.version,
            phase=(body.get("status") or {}).get("phase"),
            deleting=bool(body["metadata"].get("deletionTimestamp")),
            rollback=spec.rollback,
        )
        for name, (body, spec) in versions.items()
    ]
    roles = assign_roles(views)
    refusals: dict[str, Refusal] = {}
    taken = await _model_service(namespace, model, [body for body, _ in versions.values()], indexes)
    pods = {name: indexes.pods(body) for name, (body, _) in versions.items()}
    replicas: dict[str, int] = {}
    patches: dict[str, dict[str, Any]] = {}
    events: dict[str, list[Event]] = defaultdict(list)
    stable = roles.stable
    stable_spec = versions[stable.name][1] if stable else None

    if roles.candidate is not None:
        body, spec = versions[roles.candidate.name]
        key = (namespace, roles.candidate.name)
        status = dict(body.get("status") or {})
        ready = _ready(pods[roles.candidate.name])
        current = await _scrape_all(pods[roles.candidate.name])
        before = _windows.get(key)
        measurement = measure(before, current) if before is not None and current else None
        observed = Observed(
            now=now(),
            ready_replicas=ready,
            measurement=measurement,
            previous_version=stable.version if stable else None,
            failure=_pod_failure(pods[roles.candidate.name]),
        )
        decision = decide(spec, RolloutState.from_status(status), observed)
        if decision.restart_window or before is None:
            _windows[key] = current
        if decision.analysis is not None:
            ANALYSES.labels(namespace, model, spec.version, decision.analysis.verdict).inc()
        plan = replica_plan(
            decision.weight,
            candidate_replicas=spec.serving.replicas,
            stable_replicas=stable_spec.serving.replicas if stable_spec else 0,
            candidate_ready=ready,
        )
        replicas[roles.candidate.name] = plan.candidate
        if stable is not None:
            replicas[stable.name] = plan.stable
        patch = decision.state.to_status() | {
            "weight": decision.weight,
            "previousVersion": stable.version if stable else None,
            "stableVersion": stable.version if stable else None,
        }
        conditions = list(status.get("conditions") or [])
        if decision.reason is not None:
            conditions = _set(
                conditions,
                body,
                "Progressing",
                decision.state.phase in ("Progressing", "Paused"),
                decision.reason,
                decision.message or "",
            )
        failure = observed.failure
        if failure is not None and failure.reason == "DigestMismatch":
            conditions = _set(
                conditions, body, "ArtifactVerified", False, failure.reason, failure.message
            )
        if decision.state.phase == "RolledBack":
            ROLLBACKS.labels(namespace, model, decision.reason or "Rollback").inc()
        patch["conditions"] = conditions
        patches[roles.candidate.name] = patch
        events[roles.candidate.name] += decision.events
    if stable is not None and stable.name not in replicas:
        replicas[stable.name] = versions[stable.name][1].serving.replicas
    if stable is not None and stable_spec is not None and stable_spec.rollback:
        patches.setdefault(stable.name, {})["message"] = (
            f"spec.rollback is set but version {stable.version} has no previous version to "
            "return to: it keeps serving"
        )
    if stable is not None:
        patches.setdefault(stable.name, {}).update(
            phase="Serving",
            weight=100
            - (patches.get(roles.candidate.name, {}).get("weight", 0) if roles.candidate else 0),
            stableVersion=stable.version,
            previousVersion=roles.previous.version if roles.previous else None,
        )
    # Hand-over without a gap: a version leaving the stable role (rolled back by hand, or
    # superseded when the stable one is restored) keeps its ready pods until the stable
    # version has one of its own.
    stable_ready = _ready(pods[stable.name]) if stable is not None else 0
    for retired in roles.retired:
        replicas[retired.view.name] = 0 if stable_ready else _ready(pods[retired.view.name])
        patch = patches.setdefault(retired.view.name, {})
        patch.update(phase=retired.phase, weight=0)
        if stable is not None:
            patch["stableVersion"] = stable.version
        if retired.view.phase != retired.phase:
            if retired.phase == "RolledBack":
                ROLLBACKS.labels(namespace, model, retired.reason).inc()
            message = retirement_message(retired, stable, roles.candidate)
            body = versions[retired.view.name][0]
            conditions = list((body.get("status") or {}).get("conditions") or [])
            patch["conditions"] = _set(
                conditions, body, "Progressing", False, retired.reason, message
            )
            events[retired.view.name].append(Event("Normal", retired.reason, message))

    for name, count in replicas.items():
        body, spec = versions[name]
        refusal = await _scale(body, spec, count, model, indexes.deployment(body))
        if refusal is not None:
            refusals[name] = refusal
    for name, (body, spec) in versions.items():
        if body["metadata"].get("deletionTimestamp"):
            continue
        patch = patches.setdefault(name, {})
        refusal = refusals.get(name) or taken or _pods_refused(indexes.deployment(body))
        await _finish(body, spec, pods[name], replicas.get(name, 0), patch, events[name], refusal)
    live = {
        name
        for name, (body, _) in versions.items()
        if not body["metadata"].get("deletionTimestamp")
    }
    refused_creates.forget_where(
        lambda key: key[:2] != (namespace, model) or key[2] in live or key[2] == SERVICE_KEY
    )
    return (stable.name if stable else None), stable_ready


def _ready(pods: list[dict[str, Any]]) -> int:
    return sum(
        1
        for pod in pods
        if phase_of(pod) == "Running"
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
    )


def _pod_failure(pods: list[dict[str, Any]]) -> PodFailure | None:
    """A permanent failure a serving container reported (exit 3, reason in its message)."""
    import json

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


def _recorded_failure(status: dict[str, Any], phase: str) -> PodFailure | None:
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


async def _scrape_all(pods: list[dict[str, Any]]) -> dict[str, Scrape]:
    running = [
        (pod["metadata"]["name"], ip)
        for pod in pods
        if (ip := (pod.get("status") or {}).get("podIP")) and phase_of(pod) == "Running"
    ]
    return await scrape_pods(running)


async def _scale(
    body: dict[str, Any],
    spec: ModelVersionSpec,
    count: int,
    model: str,
    deployment: dict[str, Any] | None,
) -> Refusal | None:
    """Create or scale the version's own Deployment (`deployment`, from the watch). A
    Deployment of that name that is not the version's is left untouched: a Conflict.
    A refused create pauses (torchyard.refusals); the refusal comes back."""
    metadata = body["metadata"]
    name, namespace = metadata["name"], metadata["namespace"]
    key = (namespace, model, name)
    clock = time.monotonic()
    held = refused_creates.held(key, metadata["generation"], clock)
    if held is not None:
        return held
    manifest = serving_deployment(name, namespace, spec, count)
    kopf.adopt(manifest, owner=body)
    if deployment is None:
        try:
            if await client.create_child(manifest):
                refused_creates.forget(key)
                return None
        except client.Refused as refused:
            refused_creates.refused(key, metadata["generation"], refused.refusal, clock)
            return refused.refusal
    refused_creates.forget(key)
    try:
        await client.api().patch(
            Deployment,
            deployment_name(name),
            # The template too: a serving change (env, resources, batching) rolls the
            # version's pods; an unchanged one is a no-op for the Deployment controller.
            {"spec": {"replicas": count, "template": manifest["spec"]["template"]}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    except ApiError as error:
        if error.status.code != 404:
            raise
    return None


async def _model_service(
    namespace: str, model: str, versions: list[dict[str, Any]], indexes: Indexes
) -> Refusal | None:
    """Make sure the model's Service `<model>-model` exists and is the model's: owned by
    its versions (each live version an owner, so garbage collection removes it with the
    last one). A Service of that name owned by anything else (a TrainingJob's headless
    Service, a user's own) is left untouched: a Conflict for every version."""
    key = (namespace, model, SERVICE_KEY)
    uids = {str(body["metadata"]["uid"]) for body in versions}
    live = [body for body in versions if not body["metadata"].get("deletionTimestamp")]
    clock = time.monotonic()
    generation = tuple(sorted((b["metadata"]["uid"], b["metadata"]["generation"]) for b in live))
    held = refused_creates.held(key, generation, clock)
    if held is not None:
        return held
    name = service_name(model)
    found = indexes.service(namespace, name)
    if found is not None and (uids & set(found["owners"]) or _unowned_model_service(found, model)):
        missing = [body for body in live if body["metadata"]["uid"] not in found["owners"]]
        if missing:
            await client.add_service_owners(namespace, name, [_owner(b) for b in missing])
        refused_creates.forget(key)
        return None
    service = model_service(model, namespace)
    service["metadata"]["ownerReferences"] = [_owner(body) for body in live]
    try:
        await client.create_child(service, owners=uids, owner=f"model {model}'s ModelVersions")
    except client.Refused as refused:
        refused_creates.refused(key, generation, refused.refusal, clock)
        return refused.refusal
    refused_creates.forget(key)
    return None


def _unowned_model_service(found: dict[str, Any], model: str) -> bool:
    """A model Service made by a release that gave it no owner: it has none, and the
    labels that release set. Adopted (its versions become its owners), so that an
    operator upgrade keeps the Service and its ClusterIP."""
    labels = found["labels"]
    return (
        not found["owners"]
        and labels.get(MANAGED_BY) == "torchyard"
        and labels.get(MODEL_LABEL) == model
    )


def _owner(body: dict[str, Any]) -> dict[str, Any]:
    """An ownerReference to a version that does not control the object (it is shared)."""
    metadata = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion") or f"{GROUP}/{VERSION}",
        "kind": MODEL_VERSION.kind,
        "name": metadata["name"],
        "uid": metadata["uid"],
    }


def _pods_refused(deployment: dict[str, Any] | None) -> Refusal | None:
    """The Deployment controller's word that it cannot create the version's pods
    (ReplicaFailure: a ResourceQuota, a missing ServiceAccount, Pod Security)."""
    if deployment is None:
        return None
    conditions = (deployment.get("status") or {}).get("conditions") or []
    failure = find_condition(conditions, "ReplicaFailure") or {}
    if failure.get("status") != "True":
        return None
    return pods_refused(f"Deployment {deployment['metadata']['name']}", failure.get("message", ""))


def _set(
    conditions: list[dict[str, Any]],
    body: dict[str, Any],
    type: str,
    ok: bool,
    reason: str,
    message: str,
) -> list[dict[str, Any]]:
    return set_condition(
        conditions,
        type=type,
        status="True" if ok else "False",
        reason=reason,
        message=message,
        generation=body["metadata"]["generation"],
        now=now(),
    )


async def _finish(
    body: dict[str, Any],
    spec: ModelVersionSpec,
    pods: list[dict[str, Any]],
    desired: int,
    patch: dict[str, Any],
    events: list[Event],
    refusal: Refusal | None = None,
) -> None:
    metadata = body["metadata"]
    status = dict(body.get("status") or {})
    verdict = admit(MODEL_VERSION, body["spec"], status, metadata["generation"], now())
    # Admission owns Accepted; the rollout decision owns the conditions it set.
    by_type = {c["type"]: c for c in verdict.status_patch["conditions"]}
    for condition in patch.pop("conditions", None) or []:
        if condition["type"] != ACCEPTED:
            by_type[condition["type"]] = condition
    conditions = list(by_type.values())
    merged = {**status, **patch}
    ready = _ready(pods)
    phase = merged.get("phase") or "Pending"
    failure = _pod_failure(pods) or _recorded_failure(status, phase)
    if ready:
        conditions = _set(
            conditions,
            body,
            "ArtifactVerified",
            True,
            "DigestMatches",
            f"{spec.artifact.digest[:19]} verified by the serving pods",
        )
    conditions = _set(
        conditions,
        body,
        "Available",
        ready > 0,
        "ReplicasReady" if ready else "NoReadyReplicas",
        f"{ready}/{desired} serving pods ready",
    )
    serving = phase == "Serving" and ready > 0
    progressing = next((c for c in conditions if c["type"] == "Progressing"), {})
    if serving:
        said = f"version {spec.version} answers inference requests"
    elif failure:
        said = failure.message
    elif phase in FINAL_PHASES and progressing.get("message"):
        said = progressing["message"] + (f" (ready pods left: {ready})" if ready else "")
    elif phase == "Serving":
        said = f"version {spec.version} serves the model once its pods are ready ({ready} ready)"
    else:
        said = f"phase {phase}, {ready} pods ready"
    conditions = _set(conditions, body, "Ready", serving, "Serving" if serving else phase, said)
    if refusal is not None:
        # Its Deployment or the model's Service cannot be created (or is another's).
        conditions = _set(conditions, body, "Ready", False, refusal.reason, refusal.message)
        if not ready:
            conditions = _set(conditions, body, "Available", False, refusal.reason, refusal.message)
        events = [*events, *warnings(status.get("conditions") or [], "Ready", refusal)]
    healthy = failure is None and ((merged.get("analysis") or {}).get("verdict") != "Fail")
    conditions = _set(
        conditions,
        body,
        "Healthy",
        healthy,
        "Healthy" if healthy else (failure.reason if failure else "AnalysisFailed"),
        "no failed analysis"
        if healthy
        else (failure.message if failure else "the last analysis failed"),
    )
    update = {
        **patch,
        "phase": phase,
        "observedGeneration": metadata["generation"],
        "conditions": conditions,
        "readyReplicas": ready,
        "desiredReplicas": desired,
        "url": model_url(spec.model, metadata["namespace"]),
    }
    update = {key: value for key, value in update.items() if value is not None}
    changed = changed_fields(status, update)
    if changed:
        await client.patch_status(MODEL_VERSION, metadata["namespace"], metadata["name"], changed)
    labels = (metadata["namespace"], spec.model, spec.version)
    VERSION_WEIGHT.labels(*labels).set(float(update.get("weight") or 0))
    VERSION_HEALTHY.labels(*labels).set(1.0 if healthy else 0.0)
    for event in [*verdict.events, *events]:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


async def _admit_only(body: dict[str, Any]) -> None:
    metadata = body["metadata"]
    status = dict(body.get("status") or {})
    verdict = admit(MODEL_VERSION, body["spec"], status, metadata["generation"], now())
    changed = changed_fields(status, verdict.status_patch)
    if changed:
        await client.patch_status(MODEL_VERSION, metadata["namespace"], metadata["name"], changed)
    for event in verdict.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
