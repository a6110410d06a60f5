"""Handlers for TrainingJob: one pod per replica plus a headless Service, gang restarts.

Every trigger (a new job or a new generation of one, its pods, its Service) queues one
reconcile (torchyard.controllers.queue), which takes the latest copy of the job from
the watch and acts on training.plan's decision. Moments (deadlines, the TTL, a resync
while the job runs) come back from the reconcile as requeue delays.

Deliberately no kopf change handlers, timers or daemons on TrainingJob: each costs a
write per job (a finalizer, kopf's annotations) and a copy of the body per event, the
largest part of the operator's work with hundreds of jobs (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kopf
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from torchyard.admission import Event
from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import TRAINING_JOB
from torchyard.api.training import TrainingJobSpec
from torchyard.conditions import Conditions
from torchyard.controllers import client, jobs, objects
from torchyard.controllers.children import CreatedChildren, owned_entry
from torchyard.controllers.health import supervisor
from torchyard.controllers.progress import ProgressPoller
from torchyard.controllers.queue import NewGenerations, WorkQueue
from torchyard.controllers.reconciler import Admitted
from torchyard.controllers.supervisor import Policy
from torchyard.plans.lineage import Producer, output_entry
from torchyard.plans.names import TERMINAL, Phase
from torchyard.plans.training import (
    TrainingObserved,
    TrainingPlan,
    attempt_number,
    plan,
    pods_of_attempt,
)
from torchyard.refusals import Backoff, Refusal, controller_uid, was_refused
from torchyard.resources.kueue import QUEUE_NAME, group_name, pod_group, queue_labels
from torchyard.resources.training import (
    REPLICA_LABEL,
    headless_service,
    training_pod,
)

OWNER_LABEL = f"{GROUP}/trainingjob"
PLURAL = TRAINING_JOB.plural
queue = WorkQueue(TRAINING_JOB.kind)
new_generations = NewGenerations()
progress = ProgressPoller()
created_pods = CreatedChildren()
refused_creates = Backoff()

# Indexers are coroutines: kopf runs plain functions in a thread pool, a thread hop per
# event that costs more than the indexing itself.


@kopf.index(GROUP, VERSION, PLURAL)
async def training_jobs(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): objects.compact(body)}


@kopf.index(GROUP, VERSION, PLURAL)
async def training_outputs(namespace: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    """Each job by the artifact it writes, for the jobs that read it (torchyard.plans.lineage)."""
    return output_entry(TRAINING_JOB.kind, namespace, body)


# Children are indexed by their owner's uid: a pod or Service that only carries a
# job's labels is ignored (the labels filter the watch; the ownerReference decides).


@kopf.index("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
async def training_pods(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return owned_entry(TRAINING_JOB.kind, namespace, body)


@kopf.index("v1", "services", labels={OWNER_LABEL: kopf.PRESENT})
async def training_services(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], str]:
    uid = controller_uid(body, TRAINING_JOB.kind)
    return {(namespace, uid): name} if uid else {}


@kopf.on.event(GROUP, VERSION, PLURAL)
async def training_job_event(
    type: str | None, namespace: str, name: str, meta: kopf.Meta, **kwargs: Any
) -> None:
    if new_generations.wants(type, (namespace, name), int(meta.get("generation") or 0)):
        await _queue(namespace, name, kwargs)


@kopf.on.event("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
@kopf.on.event("v1", "services", labels={OWNER_LABEL: kopf.PRESENT})
async def training_child_changed(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    await _queue(namespace, labels[OWNER_LABEL], kwargs)


async def _queue(namespace: str, name: str, handler_kwargs: dict[str, Any]) -> None:
    indexes = (
        handler_kwargs["training_jobs"],
        handler_kwargs["training_pods"],
        handler_kwargs["training_services"],
        (handler_kwargs["training_outputs"], handler_kwargs["compression_outputs"]),
    )
    await queue.run((namespace, name), lambda: reconcile(namespace, name, *indexes))


@kopf.on.startup()
async def start_progress_poller(**_: Any) -> None:
    # A round polls at most 32 pods at a time, each bounded (2 s, then a status write):
    # ten minutes without one finished means it is stuck, not slow.
    supervisor.start("progress-poller", progress.run, Policy(stall_after=600.0))


async def reconcile(
    namespace: str,
    name: str,
    jobs_index: kopf.Index,
    pods_index: kopf.Index,
    services_index: kopf.Index,
    outputs: tuple[kopf.Index, ...] = (),
) -> float | None:
    """Act on the plan for one job (torchyard.controllers.jobs); return seconds until it
    must be looked at again. `outputs` are the job kinds' indexes by the artifact each
    job writes."""
    indexes = jobs.Indexes(jobs_index, (pods_index, services_index), outputs)
    return await jobs.reconcile(KIND, namespace, name, indexes)


@dataclass(frozen=True)
class _Observed:
    pods: list[dict[str, Any]]
    service_exists: bool


class _TrainingJobs(jobs.JobKind):
    kind = TRAINING_JOB
    terminal = TERMINAL

    def observe(self, obj: Admitted, children: Sequence[kopf.Index]) -> _Observed:
        pods_index, services_index = children
        metadata = obj.body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        owned = (metadata["namespace"], str(metadata.get("uid")))
        pods = created_pods.with_created(key, list(pods_index.get(owned, [])), time.monotonic())
        return _Observed(pods, bool(list(services_index.get(owned, []))))

    def plan(
        self,
        obj: Admitted,
        spec: TrainingJobSpec,
        status: dict[str, Any],
        observed: _Observed,
        when: datetime,
        producer: Producer | None,
    ) -> TrainingPlan:
        return plan(
            TrainingObserved(
                name=obj.body["metadata"]["name"],
                spec=spec,
                status=status,
                generation=obj.generation,
                pods=observed.pods,
                service_exists=observed.service_exists,
                now=when,
                producer=producer,
                queued=QUEUE_NAME in queue_labels(obj.body["metadata"].get("labels")),
            )
        )

    async def act(
        self,
        obj: Admitted,
        spec: TrainingJobSpec,
        decided: TrainingPlan,
        observed: _Observed,
        patch: dict[str, Any],
        events: list[Event],
    ) -> list[float | None]:
        namespace = obj.body["metadata"]["namespace"]
        for pod_name in decided.delete_pods:
            with contextlib.suppress(ApiError):  # already gone
                await client.api().delete(Pod, pod_name, namespace=namespace)
        status = {**obj.status, **obj.patch, **patch}
        attempt = attempt_number(status)
        pinned = _pinned(spec, status)
        current = pods_of_attempt(observed.pods, attempt)
        return [await _create_children(obj, pinned, decided, attempt, current, patch, events)]

    def forget(self, key: tuple[str, str]) -> None:
        progress.untrack(key)
        created_pods.forget(key)
        refused_creates.forget(key)

    def after(self, obj: Admitted, phase: str | None, observed: _Observed) -> None:
        metadata = obj.body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        _follow_progress(key, phase, observed.pods, {**obj.status, **obj.patch}, obj.body)


KIND = _TrainingJobs()


async def _create_children(
    obj: Admitted,
    spec: TrainingJobSpec,
    decided: TrainingPlan,
    attempt: int,
    current: Sequence[Mapping[str, Any]],
    patch: dict[str, Any],
    events: list[Event],
) -> float | None:
    """Create the Service and pods the plan asks for, unless a refused create is still
    pausing (torchyard.refusals). A refusal goes into `patch` (Created=False) and
    `events`; returns the seconds until the next try, None when nothing is refused."""
    job = obj.body
    metadata = job["metadata"]
    key = (metadata["namespace"], metadata["name"])
    clock = time.monotonic()
    if not decided.create_replicas and not decided.create_service:
        refused_creates.forget(key)
        return None
    refusal = refused_creates.held(key, obj.generation, clock)
    retry = refused_creates.wait(key, clock) if refusal is not None else None
    if refusal is None:
        count, refusal = await _create(job, spec, decided, attempt, current)
        if count:
            events.append(
                Event("Normal", "PodsCreated", f"created {count} pods for attempt {attempt}")
            )
        if refusal is not None:
            retry = refused_creates.refused(key, obj.generation, refusal, clock)
    conditions = Conditions(
        patch.get("conditions") or obj.status.get("conditions") or [],
        obj.generation,
        obj.now,
        obj.status.get("conditions") or [],
    )
    if refusal is not None:
        conditions.refused("Created", refusal)
        patch["message"] = refusal.message
    elif was_refused(conditions.list, "Created"):
        refused_creates.forget(key)
        replicas = spec.parallelism.replicas
        said = f"attempt {attempt}: {replicas} pods and the headless Service"
        conditions.set("Created", "True", "PodsCreated", said)
    else:
        refused_creates.forget(key)
        return retry
    patch["conditions"] = conditions.list
    events += conditions.events
    return retry


async def _create(
    job: dict[str, Any],
    spec: TrainingJobSpec,
    decided: TrainingPlan,
    attempt: int,
    current: Sequence[Mapping[str, Any]],
) -> tuple[int, Refusal | None]:
    """Create the headless Service first (the pods find replica 0 through it), then the
    pods; how many pods were created, and the first refusal."""
    metadata = job["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    if decided.create_service:
        service = headless_service(name, namespace)
        kopf.adopt(service, owner=job)
        try:
            await client.create_child(service)
        except client.Refused as refused:
            return 0, refused.refusal
    uid = metadata["uid"]
    group = pod_group(metadata.get("labels"), group_name(name, current), spec.parallelism.replicas)
    replicas = [
        training_pod(name, namespace, spec, r, attempt, uid, group) for r in decided.create_replicas
    ]
    for child in replicas:
        kopf.adopt(child, owner=job)
    results = await asyncio.gather(
        *(client.create_child(child) for child in replicas), return_exceptions=True
    )
    there = [pod for pod, done in zip(replicas, results, strict=True) if isinstance(done, bool)]
    created_pods.record((namespace, name), there, time.monotonic())
    refusals = [r.refusal for r in results if isinstance(r, client.Refused)]
    failures = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, client.Refused)
    ]
    if failures:
        raise failures[0]
    return sum(1 for done in results if done is True), (refusals[0] if refusals else None)


def _pinned(spec: TrainingJobSpec, status: dict[str, Any]) -> TrainingJobSpec:
    """The spec the pods get: the model pinned to the digest its producer reported."""
    digest = (status.get("input") or {}).get("digest")
    if spec.model.digest or not digest or spec.model.uri is None:
        return spec
    return spec.model_copy(update={"model": spec.model.model_copy(update={"digest": digest})})


def _follow_progress(
    key: tuple[str, str],
    phase: str | None,
    pods: list[dict[str, Any]],
    status: dict[str, Any],
    body: dict[str, Any],
) -> None:
    """Poll replica 0's progress while the job runs."""
    leader = next((p for p in pods if p["metadata"]["labels"].get(REPLICA_LABEL) == "0"), None)
    pod_ip = ((leader or {}).get("status") or {}).get("podIP")
    if phase == Phase.RUNNING and pod_ip:
        progress.track(key, pod_ip, status, body)
    else:
        progress.untrack(key)
