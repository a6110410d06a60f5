"""Handlers for ModelVersion: serving Deployments, progressive rollout, rollback.

The unit of reconciliation is the model: roles involve every version of it. Every
trigger (a version's new generation or deletion, a serving Deployment or pod) queues
one reconcile of its model (torchyard.controllers.queue, keyed (namespace, model)),
which reads the versions and their children from the watch, scrapes the analysed version's
pods, decides with rollout.plan_model and applies: Deployments, the model's Service,
status (guarded by resourceVersion), Events, finalizers. Moments (a pause's end, the
next analysis, a hand-over's limit) come back as the reconcile's requeue delay.

The same design as the job controllers, for the same reasons: no kopf change handlers
or timers (a timer per version listed every version of the model every 2 s, a cost
that grew with the square of the number of versions), no list, no create for a child
the watch holds, no write when nothing changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import kopf
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Service
from lightkube.types import PatchType
from prometheus_client import Counter

from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import MODEL_VERSION
from torchyard.api.modelversion import ModelVersionSpec
from torchyard.conditions import find_condition
from torchyard.controllers import client, objects, routes
from torchyard.controllers.children import CreatedChildren, owned_entry, snapshot
from torchyard.controllers.quality import compare_versions
from torchyard.controllers.queue import NewGenerations, Stale, WorkQueue, soonest
from torchyard.controllers.scrape import Scraper, scrape, scrape_pods
from torchyard.metrics import (
    ANALYSES,
    ROLLBACKS,
    VERSION_DESIRED_WEIGHT,
    VERSION_HEALTHY,
    VERSION_READY,
    VERSION_WEIGHT,
    reconciling,
)
from torchyard.plans.rollout import (
    ROLLBACK_REASONS,
    VERDICTS,
    Compared,
    ModelObserved,
    ModelPlan,
    Scrape,
    VersionObserved,
    Window,
    analysed_of,
    baseline_of,
    plan_model,
)
from torchyard.plans.rollout.model import ready_pods
from torchyard.plans.rollout.routes import Routing, route_table
from torchyard.plans.rollout.served import Answers, ServedWindow, read_answers, weights_of
from torchyard.podstatus import phase_of
from torchyard.refusals import Backoff, Refusal, controller_uid, pods_refused
from torchyard.resources.pods import MANAGED_BY
from torchyard.resources.routing import router_deployment, router_name
from torchyard.resources.serving import (
    MODEL_LABEL,
    ROUTER_LABEL,
    deployment_name,
    model_service,
    service_name,
    service_selector,
    serving_deployment,
)
from torchyard.router.app import TOKEN_SHA256_ENV
from torchyard.router.proxy import token_digest
from torchyard.validation import InvalidSpec, parse_spec

OWNER_LABEL = f"{GROUP}/modelversion"
PLURAL = MODEL_VERSION.plural
FINALIZER = f"{GROUP}/serving-handover"
"""Keeps a deleted serving version's pods until the restored version has a ready one."""
KOPF_FINALIZER = f"{GROUP}/finalizer"
"""kopf's, put on by releases whose ModelVersion handlers were kopf change handlers. kopf
strips it by itself now that no handler needs it; the controller replaces it in the same
write that adds FINALIZER, so an upgraded version is never without a hand-over."""
TEMPLATE_HASH = f"{GROUP}/template-hash"
"""On each serving Deployment: the pod template it was last given, so an unchanged one
is not patched again."""
RESYNC_SECONDS = 60.0
ROUTER_ENV = "TORCHYARD_MODEL_ROUTER"
"""A router per model splits its traffic by exact weights (resources.routing), unless
this is `off`: then the model's Service selects the serving pods and weights are replica
ratios (a cluster whose policy admits no such pod, or an operator downgrade ahead)."""
PUSH_RETRY_SECONDS = 2.0
SERVED_REFRESH_SECONDS = 10.0
"""While the router splits traffic between versions, status.weight (the share served) is
read again this often."""
"""A safety net: a model with a rollout or a hand-over under way is looked at this often."""
SERVICE_KEY = ""
ROUTER_KEY = "/router"
"""refused_creates' keys of the model's Service and router (never a version's name)."""
ROUTER_REFUSED = "RouterRefused"
"""The Warning Event on the model's versions when its router cannot be created."""
log = logging.getLogger(__name__)
queue = WorkQueue(MODEL_VERSION.kind)
new_generations = NewGenerations()
refused_creates = Backoff()
"""Deployments and model Services whose create was refused, keyed (namespace, model,
version name or SERVICE_KEY), until they are tried again; forgotten with the model."""


def now() -> datetime:
    """The reconcile's time, to the microsecond: what it writes is in whole seconds (the
    API's), but a pause due at 12:00:05 must be looked at then, not up to a second later
    as a clock read in whole seconds would have it."""
    return datetime.now(UTC)


def deployment_entry(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the controller reads of a serving Deployment: identity, replicas, the template
    it was given, status."""
    entry = snapshot(body)
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    entry["metadata"]["annotations"] = {TEMPLATE_HASH: annotations.get(TEMPLATE_HASH)}
    entry["spec"] = {"replicas": (body.get("spec") or {}).get("replicas")}
    return entry


created_deployments = CreatedChildren(snap=deployment_entry)
"""Deployments created that the watch has not shown yet, by (namespace, version uid)."""


class Windows:
    """Each model's analysed version (the candidate, or the serving one while watched after
    promotion) and its pods' counters when its analysis window began."""

    def __init__(self) -> None:
        self._started: dict[tuple[str, str], tuple[str, dict[str, Scrape]]] = {}

    def __len__(self) -> int:
        return len(self._started)

    def start(self, model: tuple[str, str], candidate: str) -> dict[str, Scrape] | None:
        found = self._started.get(model)
        return found[1] if found is not None and found[0] == candidate else None

    def keep(
        self, model: tuple[str, str], candidate: str | None, start: Mapping[str, Scrape] | None
    ) -> None:
        if candidate is None or start is None:
            self._started.pop(model, None)
        else:
            self._started[model] = (candidate, dict(start))


windows = Windows()
scraper = Scraper()
pushed = routes.Pushed()
tokens: dict[tuple[str, str], str] = {}
"""Each model's routes API token, only here (its router has the digest): see _router."""
behind: set[tuple[str, str]] = set()
"""Models with a ready router pod that holds an older table: no pod is scaled down or
released until every ready router holds the current one."""
lacking: set[tuple[str, str]] = set()
"""Models with a running router pod that did not take the current table: looked at again
in PUSH_RETRY_SECONDS (its events stop until it is ready, which needs a table)."""
served_windows: dict[tuple[str, str], ServedWindow] = {}
"""Each routed model's served window: the weights it measures and its routers' counts at
its start (rollout.served)."""


# A version's children are found by ownerReference uid, never by name or labels (the
# labels only narrow the watches): its Deployment by the version's uid, the Deployment's
# ReplicaSets by the Deployment's, their pods by theirs. A pod that only carries a
# version's labels is neither counted as ready nor scraped for the analysis.
# Indexers are coroutines: kopf runs plain functions in a thread pool.


@kopf.index(GROUP, VERSION, PLURAL)
async def model_versions(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every version by its model: the unit of reconciliation."""
    model = (body.get("spec") or {}).get("model")
    return {(namespace, str(model)): objects.compact(body)} if model else {}


# The pods and ReplicaSets of the model's router too (MODEL_LABEL): found the same way,
# from the router Deployment's uid.
@kopf.index("v1", "pods", labels={MODEL_LABEL: kopf.PRESENT})
async def serving_pods(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return owned_entry("ReplicaSet", namespace, body)


@kopf.index("apps", "v1", "replicasets", labels={MODEL_LABEL: kopf.PRESENT})
async def serving_replicasets(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], str]:
    deployment = controller_uid(body, "Deployment")
    return {(namespace, deployment): str(body["metadata"]["uid"])} if deployment else {}


@kopf.index("apps", "v1", "deployments", labels={OWNER_LABEL: kopf.PRESENT})
async def serving_deployments(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    uid = controller_uid(body, MODEL_VERSION.kind)
    return {(namespace, uid): deployment_entry(body)} if uid else {}


@kopf.index("v1", "services", labels={MODEL_LABEL: kopf.PRESENT})
async def model_services(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    """Model Services by name, with their owners: whose a `<model>-model` is decides."""
    metadata = body["metadata"]
    owners = [ref.get("uid") for ref in metadata.get("ownerReferences") or []]
    spec = body.get("spec") or {}
    ports = [port.get("name") for port in spec.get("ports") or []]
    labels = dict(metadata.get("labels") or {})
    selector = dict(spec.get("selector") or {})
    return {
        (namespace, name): {
            "owners": owners,
            "labels": labels,
            "ports": ports,
            "selector": selector,
        }
    }


@kopf.index("apps", "v1", "deployments", labels={ROUTER_LABEL: kopf.PRESENT})
async def model_routers(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    """Router Deployments by name: their uid (their pods are found from it), owners, and
    the SHA-256 of the routes API's token from their pod template."""
    metadata = body["metadata"]
    owners = [ref.get("uid") for ref in metadata.get("ownerReferences") or []]
    template = ((body.get("spec") or {}).get("template") or {}).get("spec") or {}
    token = next(
        (
            str(var.get("value") or "")
            for container in template.get("containers") or []
            for var in container.get("env") or []
            if var.get("name") == TOKEN_SHA256_ENV
        ),
        "",
    )
    template_hash = (metadata.get("annotations") or {}).get(TEMPLATE_HASH)
    entry = {
        "uid": metadata.get("uid"),
        "owners": owners,
        "token_sha256": token,
        "hash": template_hash,
    }
    return {(namespace, name): entry}


@dataclass(frozen=True)
class Indexes:
    """What the watches hold about the versions and their serving children."""

    versions_by_model: kopf.Index
    pods_by_replicaset: kopf.Index
    replicasets_by_deployment: kopf.Index
    deployments_by_version: kopf.Index
    services_by_name: kopf.Index
    routers_by_name: kopf.Index

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Indexes:
        """From a kopf handler's keyword arguments."""
        return cls(
            kwargs["model_versions"],
            kwargs["serving_pods"],
            kwargs["serving_replicasets"],
            kwargs["serving_deployments"],
            kwargs["model_services"],
            kwargs["model_routers"],
        )

    def versions(self, namespace: str, model: str) -> list[dict[str, Any]]:
        """The model's versions: the watch's copies, or the operator's own newer writes."""
        found = []
        for watched in self.versions_by_model.get((namespace, model), []):
            name = watched["metadata"]["name"]
            latest = objects.latest(MODEL_VERSION.kind, namespace, name, [watched])
            found.append(latest if latest is not None else dict(watched))
        return found

    def deployment(self, version: Mapping[str, Any]) -> dict[str, Any] | None:
        """The version's own serving Deployment, as the watch last saw it (or as it was
        created, until the watch shows it)."""
        key = (version["metadata"]["namespace"], str(version["metadata"]["uid"]))
        watched = list(self.deployments_by_version.get(key, []))
        found = created_deployments.with_created(key, watched, time.monotonic())
        return next(iter(found), None)

    def pods(self, version: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The pods of the version's Deployment's ReplicaSets."""
        namespace = version["metadata"]["namespace"]
        deployment = self.deployment(version)
        if deployment is None or deployment["metadata"].get("uid") is None:
            return []
        sets = self.replicasets_by_deployment.get((namespace, deployment["metadata"]["uid"]), [])
        return [pod for rs in sets for pod in self.pods_by_replicaset.get((namespace, rs), [])]

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next(iter(self.services_by_name.get((namespace, name), [])), None)

    def router(self, namespace: str, model: str) -> dict[str, Any] | None:
        return next(iter(self.routers_by_name.get((namespace, router_name(model)), [])), None)

    def router_pods(self, namespace: str, router: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The pods of the router Deployment's ReplicaSets."""
        sets = self.replicasets_by_deployment.get((namespace, router["uid"]), [])
        return [pod for rs in sets for pod in self.pods_by_replicaset.get((namespace, rs), [])]


@kopf.on.event(GROUP, VERSION, PLURAL)
async def model_version_event(
    type: str | None, namespace: str, name: str, body: kopf.Body, **kwargs: Any
) -> None:
    # Status-only changes are the operator's own writes coming back. A deletion bumps
    # the generation; a version marked for deletion is looked at on every event anyway.
    metadata = body.get("metadata") or {}
    generation = int(metadata.get("generation") or 0)
    leaving = bool(metadata.get("deletionTimestamp"))
    if new_generations.wants(type, (namespace, name), generation) or leaving:
        await _queue(namespace, str((body.get("spec") or {}).get("model")), kwargs)


@kopf.on.cleanup()
async def close_scraper(**_: Any) -> None:
    await scraper.close()


@kopf.on.event("apps", "v1", "deployments", labels={MODEL_LABEL: kopf.PRESENT})
@kopf.on.event("apps", "v1", "replicasets", labels={MODEL_LABEL: kopf.PRESENT})
@kopf.on.event("v1", "pods", labels={MODEL_LABEL: kopf.PRESENT})
@kopf.on.event("v1", "services", labels={MODEL_LABEL: kopf.PRESENT})
async def serving_child_changed(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    await _queue(namespace, labels[MODEL_LABEL], kwargs)


async def _queue(namespace: str, model: str, handler_kwargs: Mapping[str, Any]) -> None:
    indexes = Indexes.of(handler_kwargs)
    await queue.run((namespace, model), lambda: reconcile_model(namespace, model, indexes))


async def reconcile_model(namespace: str, model: str, indexes: Indexes) -> float | None:
    """Reconcile every version of the model; return seconds until it must be looked at
    again (None: when something changes)."""
    key = (namespace, model)
    with reconciling(MODEL_VERSION.kind):
        bodies = indexes.versions(namespace, model)
        if not bodies:
            _forget(key)
            return None
        try:
            return await _reconcile(key, bodies, indexes)
        except client.NamespaceGone:
            # The namespace is being deleted: nothing can be created there and every
            # version goes with it, so there is nothing to hand over or keep serving.
            await _release([b for b in bodies if b["metadata"].get("deletionTimestamp")])
            return None
        except ApiError as error:
            if error.status.code != 429:
                raise
            # The API server asks to come back later (e.g. "storage is (re)initializing"
            # while a CRD is updated): a pause, not a failure worth a traceback.
            log.info("ModelVersions of %s/%s: %s; again in 2 s", *key, error.status.message)
            return 2.0


async def _reconcile(
    key: tuple[str, str], bodies: list[dict[str, Any]], indexes: Indexes
) -> float | None:
    namespace, model = key
    clock = time.monotonic()
    created_deployments.expire(clock)
    specs = {b["metadata"]["name"]: _spec(b) for b in bodies}
    live = [b for b in bodies if not b["metadata"].get("deletionTimestamp")]
    valid = [b for b in bodies if specs[b["metadata"]["name"]] is not None]
    serving = [b for b in live if specs[b["metadata"]["name"]] is not None]
    service_refusal = await _model_service(namespace, model, valid, serving, indexes)
    versions = [
        VersionObserved(
            body=body,
            spec=specs[body["metadata"]["name"]],
            pods=indexes.pods(body),
            refusal=refused_creates.held((*key, body["metadata"]["name"]), _gen(body), clock)
            or service_refusal
            or _pods_refused(indexes.deployment(body)),
        )
        for body in bodies
    ]
    routing_on = routers_on(os.environ.get(ROUTER_ENV))
    router = await _router(key, valid, serving, indexes) if routing_on else None
    analysed = analysed_of(versions)
    window = None
    if analysed is not None:
        pods = next(v.pods for v in versions if v.name == analysed)
        window = Window(windows.start(key, analysed), await _scrape_running(pods))
    moment = now()
    observed = ModelObserved(versions, moment, window)
    plan = plan_model(observed)
    if plan.awaits_quality and window is not None:
        # An analysis is made now whose verdict turns on the reference request's answers
        # (not one already Inconclusive for too few requests: the probe would be wasted).
        compared = await _compare(model, versions, analysed)
        if compared is not None:
            observed = replace(observed, window=replace(window, quality=compared))
            plan = plan_model(observed)
    routing = None
    if router is not None:
        # Milliseconds of the wall clock: a table from an operator restarted since is newer.
        routing = route_table(versions, plan, generation=int(moment.timestamp() * 1000))
        served = await _served(key, routing, router, indexes)
        if served is not None:
            # The same decisions; status.weight says what the routers served.
            plan = plan_model(replace(observed, served=served))
    for planned in plan.versions:
        if planned.status.get("phase") == "RolledBack":
            # The moment of the decision (benchmarks/rollout.py --measure rollback reads it).
            log.info(
                "ModelVersion %s/%s rolled back: traffic leaves it now", namespace, planned.name
            )
    # Traffic moves first: a rollback's weight 0 reaches the router before anything
    # is scaled or written.
    routed = await _route(key, routing, router, indexes)
    await _select(namespace, model, routed, valid, indexes)
    if key not in behind:
        await _release([v.body for v in versions if v.name in plan.release])
    hold = key in behind
    retries = [await _scale(v, plan, model, indexes, hold) for v in versions if not v.deleting]
    if router is None and routing_on:
        # After the versions' own Deployments: a quota that holds one more Deployment
        # serves the model (by replica ratios) rather than routes to nothing.
        await _create_router(key, valid, serving, indexes)
    stale = [await _write(v, plan) for v in versions if not v.deleting]
    if any(stale):
        # Planned again at once from fresh copies: the analysis window and the metrics
        # stay as they were, or the analysis just made would be lost and counted twice.
        raise Stale(f"a ModelVersion of model {model} in {namespace} changed since it was read")
    windows.keep(key, analysed, plan.window_start)
    _count(key, versions, plan, analysed)
    refused_creates.forget_where(
        lambda k: (
            k[:2] != key
            or k[2] in (SERVICE_KEY, ROUTER_KEY)
            or k[2] in {b["metadata"]["name"] for b in live}
        )
    )
    under_way = analysed is not None or len(live) < len(bodies)
    service_retry = refused_creates.wait((*key, SERVICE_KEY), clock) if service_refusal else None
    # None unless the router's create is held back: a settled model tries it again then.
    router_retry = refused_creates.wait((*key, ROUTER_KEY), clock) if router is None else None
    split = key in served_windows and len(served_windows[key].weights) > 1
    refresh = SERVED_REFRESH_SECONDS if split else None
    if key in lacking:
        refresh = PUSH_RETRY_SECONDS
    planned = soonest(plan.requeue_after, service_retry, router_retry, refresh, *retries)
    return soonest(planned, RESYNC_SECONDS) if under_way else planned


def _spec(body: Mapping[str, Any]) -> ModelVersionSpec | None:
    try:
        return parse_spec(ModelVersionSpec, dict(body.get("spec") or {}))
    except InvalidSpec:
        return None  # admission says why in status


def _gen(body: Mapping[str, Any]) -> int:
    return int(body["metadata"].get("generation") or 0)


async def _compare(
    model: str, versions: list[VersionObserved], analysed: str | None
) -> Compared | None:
    """The analysed version's answers to the reference request against the serving
    version's (or the labels), when its spec has one (rollout.analysis.quality)."""
    subject = next((v for v in versions if v.name == analysed), None)
    if subject is None or subject.spec is None:
        return None
    spec = subject.spec.rollout.analysis.quality
    if spec is None:
        return None
    baseline = next((v for v in versions if v.name == baseline_of(versions)), None)
    return await compare_versions(
        scraper.session(),
        spec,
        model,
        subject.pods,
        None if baseline is None else baseline.pods,
        None if baseline is None or baseline.spec is None else baseline.spec.version,
    )


async def _scrape_running(pods: list[dict[str, Any]]) -> dict[str, Scrape]:
    running = [
        (pod["metadata"]["name"], ip)
        for pod in pods
        if (ip := (pod.get("status") or {}).get("podIP")) and phase_of(pod) == "Running"
    ]
    return await scrape_pods(running, session=scraper.session())


def template_hash(manifest: Mapping[str, Any]) -> str:
    """A digest of the Deployment's pod template, to tell whether it must be patched."""
    template = json.dumps(manifest["spec"]["template"], sort_keys=True)
    return hashlib.sha256(template.encode()).hexdigest()[:16]


async def _scale(
    version: VersionObserved, plan: ModelPlan, model: str, indexes: Indexes, hold: bool = False
) -> float | None:
    """Create the version's own Deployment, or patch it when its replicas or template
    differ from the plan's; with `hold`, never to fewer replicas than it has (a router may
    still send to them). A Deployment of that name that is not the version's is left
    untouched (a Conflict); a refused create pauses (torchyard.refusals). Returns the
    seconds until a refused create is tried again: 0 for one refused just now, so that
    the refusal is said in status at once."""
    planned = plan.version(version.name)
    if planned is None or planned.replicas is None or version.spec is None:
        return None
    metadata = version.body["metadata"]
    namespace = metadata["namespace"]
    key = (namespace, model, version.name)
    clock = time.monotonic()
    if refused_creates.held(key, _gen(version.body), clock) is not None:
        return refused_creates.wait(key, clock)
    manifest = serving_deployment(version.name, namespace, version.spec, planned.replicas)
    digest = template_hash(manifest)
    manifest["metadata"]["annotations"] = {TEMPLATE_HASH: digest}
    kopf.adopt(manifest, owner=dict(version.body))
    deployment = indexes.deployment(version.body)
    if deployment is None:
        try:
            if await client.create_child(manifest):
                owner = (namespace, str(metadata["uid"]))
                created_deployments.record(owner, [manifest], clock)
        except client.Refused as refused:
            refused_creates.refused(key, _gen(version.body), refused.refusal, clock)
            return 0.0
        refused_creates.forget(key)
        return None
    refused_creates.forget(key)
    patch: dict[str, Any] = {}
    has = (deployment.get("spec") or {}).get("replicas")
    replicas = max(planned.replicas, has) if hold and isinstance(has, int) else planned.replicas
    if has != replicas:
        patch["spec"] = {"replicas": replicas}
    if deployment["metadata"].get("annotations", {}).get(TEMPLATE_HASH) != digest:
        # A serving change (env, resources, batching) rolls the version's pods.
        patch["metadata"] = {"annotations": {TEMPLATE_HASH: digest}}
        patch["spec"] = {"replicas": replicas, "template": manifest["spec"]["template"]}
    if patch:
        await _patch_deployment(deployment_name(version.name), namespace, patch)
    return None


async def _patch_deployment(name: str, namespace: str, patch: dict[str, Any]) -> None:
    """A merge patch of one of the model's Deployments; one gone meanwhile is left be."""
    try:
        await client.api().patch(
            Deployment, name, patch, namespace=namespace, patch_type=PatchType.MERGE
        )
    except ApiError as error:
        if error.status.code != 404:
            raise


async def _write(version: VersionObserved, plan: ModelPlan) -> bool:
    """Write the version's status (guarded by the resourceVersion it was read at), post
    its Events, keep the hand-over finalizer on it. True when it changed since it was
    read (the model must be planned again)."""
    planned = plan.version(version.name)
    if planned is None:
        return False
    metadata = version.body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    body: Mapping[str, Any] = version.body
    if planned.status:
        written = await client.patch_status(
            MODEL_VERSION, namespace, name, planned.status, metadata.get("resourceVersion")
        )
        if written is None:
            return await _refresh(namespace, name)  # changed, or gone
        objects.remember(MODEL_VERSION.kind, written)
        body = written
    for event in planned.events:
        kopf.event(dict(version.body), type=event.type, reason=event.reason, message=event.message)
    if version.spec is not None and _finalizers(body) != _wanted(body, keep=True):
        written = await client.set_finalizers(
            MODEL_VERSION,
            namespace,
            name,
            _wanted(body, keep=True),
            body["metadata"]["resourceVersion"],
        )
        if written is None:
            return await _refresh(namespace, name)
        objects.remember(MODEL_VERSION.kind, written)
    return False


def _finalizers(body: Mapping[str, Any]) -> list[str]:
    return list(body["metadata"].get("finalizers") or [])


def _wanted(body: Mapping[str, Any], keep: bool) -> list[str]:
    """The finalizers the version should have: the hand-over one while it may serve,
    never kopf's (see KOPF_FINALIZER), and everyone else's as they are."""
    others = [f for f in _finalizers(body) if f not in (FINALIZER, KOPF_FINALIZER)]
    return [*others, FINALIZER] if keep else others


async def _release(leaving: list[dict[str, Any]]) -> None:
    """Let leaving versions go: their Deployment and pods are garbage-collected next."""
    for body in leaving:
        metadata = body["metadata"]
        created_deployments.forget((metadata["namespace"], str(metadata["uid"])))
        wanted = _wanted(body, keep=False)
        if _finalizers(body) == wanted:
            continue
        written = await client.set_finalizers(
            MODEL_VERSION,
            metadata["namespace"],
            metadata["name"],
            wanted,
            metadata["resourceVersion"],
        )
        if written is not None:
            objects.remember(MODEL_VERSION.kind, written)
        elif await _refresh(metadata["namespace"], metadata["name"]):
            raise Stale(f"ModelVersion {metadata['namespace']}/{metadata['name']} changed")
        # else: gone already, which is what releasing it was for


async def _refresh(namespace: str, name: str) -> bool:
    """Read the version again after a refused write; False when it is gone."""
    fresh = await client.get_object(MODEL_VERSION, namespace, name)
    if fresh is not None:
        objects.remember(MODEL_VERSION.kind, fresh)
    return fresh is not None


_versions_seen: dict[tuple[str, str], set[str]] = {}
"""Each model's versions as of its last reconcile, to drop the series of the ones gone."""


def _count(
    key: tuple[str, str], versions: list[VersionObserved], plan: ModelPlan, analysed: str | None
) -> None:
    """The metrics: analyses and rollbacks made, each live version's weight and health."""
    namespace, model = key
    earlier = _versions_seen.get(key)
    if earlier is None:
        _zero(ROLLBACKS, [(namespace, model, reason) for reason in ROLLBACK_REASONS])
    seen = set()
    for version in versions:
        planned = plan.version(version.name)
        if planned is None or version.spec is None:
            continue
        seen.add(version.spec.version)
        labels = (namespace, model, version.spec.version)
        if earlier is None or version.spec.version not in earlier:
            _zero(ANALYSES, [(*labels, verdict) for verdict in VERDICTS])
        VERSION_WEIGHT.labels(*labels).set(planned.weight)
        VERSION_DESIRED_WEIGHT.labels(*labels).set(planned.desired_weight)
        VERSION_HEALTHY.labels(*labels).set(1.0 if planned.healthy else 0.0)
        VERSION_READY.labels(*labels).set(planned.ready)
    subject = next((v for v in versions if v.name == analysed), None)
    if plan.analysis is not None and subject is not None and subject.spec is not None:
        ANALYSES.labels(namespace, model, subject.spec.version, plan.analysis).inc()
    for reason in plan.rollbacks:
        ROLLBACKS.labels(namespace, model, reason).inc()
    _drop_series(key, (earlier or set()) - seen)
    _versions_seen[key] = seen


def _zero(counter: Counter, children: list[tuple[str, ...]]) -> None:
    """Create the counter's series at 0 ahead of their first increment. A series that
    appears at 1 has no earlier sample to rise from: increase() and rate() see nothing,
    and an alert on a model's first rollback or failed analysis would never fire."""
    for labels in children:
        counter.labels(*labels)


def _drop_series(key: tuple[str, str], versions: set[str]) -> None:
    for version in versions:
        for gauge in (VERSION_WEIGHT, VERSION_DESIRED_WEIGHT, VERSION_HEALTHY, VERSION_READY):
            with contextlib.suppress(KeyError):  # never set
                gauge.remove(*key, version)
        for verdict in VERDICTS:
            with contextlib.suppress(KeyError):
                ANALYSES.remove(*key, version, verdict)


def _forget(key: tuple[str, str]) -> None:
    """Drop what is kept about a model none of whose versions is left."""
    windows.keep(key, None, None)
    pushed.forget(key)
    lacking.discard(key)
    behind.discard(key)
    tokens.pop(key, None)
    served_windows.pop(key, None)
    refused_creates.forget_where(lambda k: k[:2] != key)
    _drop_series(key, _versions_seen.pop(key, set()))
    for reason in ROLLBACK_REASONS:
        with contextlib.suppress(KeyError):
            ROLLBACKS.remove(*key, reason)


async def _model_service(
    namespace: str,
    model: str,
    versions: list[dict[str, Any]],
    live: list[dict[str, Any]],
    indexes: Indexes,
) -> Refusal | None:
    """Make sure the model's Service `<model>-model` exists and is the model's: owned by
    its versions (each live version an owner, so garbage collection removes it with the
    last one). A Service of that name owned by anything else (a TrainingJob's headless
    Service, a user's own) is left untouched: a Conflict for every version."""
    if not live:
        return None
    key = (namespace, model, SERVICE_KEY)
    uids = {str(body["metadata"]["uid"]) for body in versions}
    clock = time.monotonic()
    generation = tuple(sorted((b["metadata"]["uid"], _gen(b)) for b in live))
    held = refused_creates.held(key, generation, clock)
    if held is not None:
        return held
    name = service_name(model)
    found = indexes.service(namespace, name)
    service = model_service(model, namespace)
    if found is not None and (uids & set(found["owners"]) or _unowned_model_service(found, model)):
        missing = [body for body in live if body["metadata"]["uid"] not in found["owners"]]
        if missing:
            await client.add_owners(Service, namespace, name, [_owner(b) for b in missing])
        # A Service made by an earlier release lacks the ports added since (grpc).
        have = set(found.get("ports") or [])
        lacking = [port for port in service["spec"]["ports"] if port["name"] not in have]
        if lacking:
            refused = await client.add_service_ports(namespace, name, lacking)
            if refused is not None:
                names = ", ".join(port["name"] for port in lacking)
                log.warning(
                    "Service %s/%s: cannot add port(s) %s: %s", namespace, name, names, refused
                )
        refused_creates.forget(key)
        return None
    service["metadata"]["ownerReferences"] = [_owner(body) for body in live]
    try:
        await client.create_child(service, owners=uids, owner=f"model {model}'s ModelVersions")
    except client.Refused as refused:
        refused_creates.refused(key, generation, refused.refusal, clock)
        return refused.refusal
    refused_creates.forget(key)
    return None


ROUTER_OFF = ("off", "false", "0", "no")
ROUTER_ON = ("on", "true", "1", "yes", "")


def routers_on(setting: str | None) -> bool:
    """TORCHYARD_MODEL_ROUTER: on unless it says off (off, false, 0, no, in any case). A
    value that says neither is taken as on, with a warning: never a silent surprise."""
    said = (setting or "").strip().lower()
    if said in ROUTER_OFF:
        return False
    if said not in ROUTER_ON and said not in _warned_settings:
        _warned_settings.add(said)
        log.warning("%s=%r is neither on nor off: model routers stay on", ROUTER_ENV, setting)
    return True


_warned_settings: set[str] = set()


async def _router(
    key: tuple[str, str],
    versions: list[dict[str, Any]],
    live: list[dict[str, Any]],
    indexes: Indexes,
) -> dict[str, Any] | None:
    """The model's router Deployment `<model>-router` (the watch's entry), owned by every
    live version, as the model's Service is. None while there is none (_create_router
    makes it), or when one of that name is not the model's."""
    namespace, model = key
    if not live:
        return None
    found = indexes.router(namespace, model)
    if not _models(found, versions):
        return None
    assert found is not None
    missing = [body for body in live if body["metadata"]["uid"] not in found["owners"]]
    if missing:
        name = router_name(model)
        await client.add_owners(Deployment, namespace, name, [_owner(b) for b in missing])
    # Made by another operator process (a restart, a new leader): only the token's digest
    # is on the Deployment, so this process's token rolls the router (once: the token is
    # kept while the watch catches up with the patch); the Service selects the serving
    # pods until a router pod takes a table with it.
    token = tokens.setdefault(key, secrets.token_urlsafe(32))
    usable = token_digest(token) == found["token_sha256"]
    # A release whose router pod differs (image, settings) rolls it too, token kept.
    manifest = router_deployment(model, namespace, token_digest(token))
    digest = template_hash(manifest)
    if found.get("hash") != digest:
        patch = {
            "metadata": {"annotations": {TEMPLATE_HASH: digest}},
            "spec": {"template": manifest["spec"]["template"]},
        }
        await _patch_deployment(router_name(model), namespace, patch)
    return {**found, "token": token} if usable else None


async def _create_router(
    key: tuple[str, str],
    versions: list[dict[str, Any]],
    live: list[dict[str, Any]],
    indexes: Indexes,
) -> None:
    """Create the model's router. A refusal (a quota, a Deployment of that name that is
    not the model's) is tried again after a pause; meanwhile the model serves by replica
    ratios, and a Warning Event on each version says why."""
    namespace, model = key
    if not live:
        return
    if _models(indexes.router(namespace, model), versions):
        return  # the model's, still without its token in the watch's copy
    uids = {str(body["metadata"]["uid"]) for body in versions}
    clock = time.monotonic()
    refusal_key = (*key, ROUTER_KEY)
    generation = tuple(sorted((b["metadata"]["uid"], _gen(b)) for b in live))
    if refused_creates.held(refusal_key, generation, clock) is not None:
        return
    token = tokens.setdefault(key, secrets.token_urlsafe(32))
    manifest = router_deployment(model, namespace, token_digest(token))
    manifest["metadata"]["annotations"] = {TEMPLATE_HASH: template_hash(manifest)}
    manifest["metadata"]["ownerReferences"] = [_owner(body) for body in live]
    try:
        await client.create_child(manifest, owners=uids, owner=f"model {model}'s ModelVersions")
    except client.Refused as refused:
        refused_creates.refused(refusal_key, generation, refused.refusal, clock)
        message = f"model {model} serves by replica ratios, without a router: "
        message += refused.refusal.message
        log.warning("%s/%s: %s", namespace, model, message)
        # Not a condition: every version still serves. Once per refusal (it is held).
        for body in live:
            kopf.event(dict(body), type="Warning", reason=ROUTER_REFUSED, message=message)


async def _route(
    key: tuple[str, str],
    routing: Routing | None,
    router: Mapping[str, Any] | None,
    indexes: Indexes,
) -> bool:
    """Push the routing table to the router pods that do not hold it yet; whether a ready
    router pod holds it (the Service may then select the routers)."""
    if router is None or routing is None:
        served_windows.pop(key, None)
        lacking.discard(key)
        behind.discard(key)
        return False
    table = routing.table
    running = _running(indexes.router_pods(key[0], router))
    current, ours = await pushed.sync(
        scraper.session(),
        key,
        [(routes.pod_key(pod), pod["status"]["podIP"]) for pod in running],
        table,
        str(router["token"]),
    )
    # A ready router pod with a table of this process's takes the model's traffic; one
    # whose push failed just now keeps its older table rather than flip the Service.
    ready = [pod for pod in running if routes.pod_key(pod) in ours and ready_pods([pod])]
    routed = bool(ready) and bool(table.routable)
    lacking.discard(key)
    if any(routes.pod_key(pod) not in current for pod in running):
        lacking.add(key)
    behind.discard(key)
    if any(routes.pod_key(pod) not in current for pod in ready):
        # It may still send requests to pods the plan scales down: not yet (_scale).
        behind.add(key)
    if not routed:
        served_windows.pop(key, None)
    elif key not in served_windows or served_windows[key].weights != weights_of(table):
        weights = weights_of(table)
        start: dict[str, Answers | None] = {}
        if len(weights) > 1:
            read = await _answers(running)
            start = {routes.pod_key(pod): read.get(routes.pod_key(pod)) for pod in running}
        served_windows[key] = ServedWindow(weights, start)
    return routed


async def _served(
    key: tuple[str, str], routing: Routing, router: Mapping[str, Any], indexes: Indexes
) -> dict[str, float] | None:
    """Each version's share of the answers under the table about to be pushed, when known
    (rollout.served): only while the routers serve the model (they did at the last
    reconcile) by the weights asked for (not handing over). One version alone serves all;
    several are read from the router pods' counters, once a window measures these weights
    (a new one, starting now, knows nothing yet)."""
    window = served_windows.get(key)
    weights = weights_of(routing.table)
    if window is None or routing.handing_over or not weights:
        return None
    if len(weights) == 1:
        return {weights[0][0]: 100.0}
    if window.weights != weights:
        return None
    return window.shares(await _answers(_running(indexes.router_pods(key[0], router))))


def _running(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods that can take a table and requests: running, with an IP, not being deleted."""
    return [
        pod
        for pod in pods
        if phase_of(pod) == "Running"
        and (pod.get("status") or {}).get("podIP")
        and not pod["metadata"].get("deletionTimestamp")
    ]


async def _answers(pods: list[dict[str, Any]]) -> dict[str, Answers]:
    """Each router pod's answers by version (by routes.pod_key); pods that cannot say are
    left out."""
    session = scraper.session()
    texts = await asyncio.gather(*(scrape(session, pod["status"]["podIP"]) for pod in pods))
    found: dict[str, Answers] = {}
    for pod, text in zip(pods, texts, strict=True):
        if isinstance(text, str) and isinstance(answers := read_answers(text), dict):
            found[routes.pod_key(pod)] = answers
    return found


async def _select(
    namespace: str, model: str, routed: bool, versions: list[dict[str, Any]], indexes: Indexes
) -> None:
    """Point the model's Service (when it is the model's) at the router pods while one is
    ready with the current table, else at the serving pods themselves."""
    name = service_name(model)
    found = indexes.service(namespace, name)
    if found is None or not _models(found, versions):
        return
    wanted = service_selector(model, routed)
    if found.get("selector") != wanted:
        log.info(
            "Service %s/%s: to the %s pods", namespace, name, "router" if routed else "serving"
        )
        await client.set_selector(namespace, name, wanted, dict(found.get("selector") or {}))


def _models(found: Mapping[str, Any] | None, versions: list[dict[str, Any]]) -> bool:
    """Whether a watched child shared by the model's versions (its Service, its router) is
    the model's: one of the versions owns it."""
    uids = {str(body["metadata"]["uid"]) for body in versions}
    return found is not None and bool(uids & set(found["owners"]))


def _unowned_model_service(found: Mapping[str, Any], model: str) -> bool:
    """A model Service made by a release that gave it no owner: it has none, and the
    labels that release set. Adopted (its versions become its owners), so that an
    operator upgrade keeps the Service and its ClusterIP."""
    labels = found["labels"]
    return (
        not found["owners"]
        and labels.get(MANAGED_BY) == "torchyard"
        and labels.get(MODEL_LABEL) == model
    )


def _owner(body: Mapping[str, Any]) -> dict[str, Any]:
    """An ownerReference to a version that does not control the object (it is shared)."""
    metadata = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion") or f"{GROUP}/{VERSION}",
        "kind": MODEL_VERSION.kind,
        "name": metadata["name"],
        "uid": metadata["uid"],
    }


def _pods_refused(deployment: Mapping[str, Any] | None) -> Refusal | None:
    """The Deployment controller's word that it cannot create the version's pods
    (ReplicaFailure: a ResourceQuota, a missing ServiceAccount, Pod Security)."""
    if deployment is None:
        return None
    conditions = (deployment.get("status") or {}).get("conditions") or []
    failure = find_condition(conditions, "ReplicaFailure") or {}
    if failure.get("status") != "True":
        return None
    return pods_refused(f"Deployment {deployment['metadata']['name']}", failure.get("message", ""))
