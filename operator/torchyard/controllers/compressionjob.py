"""Handlers for CompressionJob: run it as a batch/v1 Job and mirror its progress in status.

Every trigger (a new job or a new generation of one, its child Job, its pods) queues
the same reconcile (torchyard.controllers.queue), which takes the latest copy of the
object from the watch, decides with pure functions (admission.admit, compression.plan)
and acts; the TTL and a resync while the job runs come back as requeue delays. No kopf
change handlers or timers, for the reasons given in torchyard.controllers.trainingjob.
"""

from __future__ import annotations

import time
from typing import Any

import kopf
from pydantic import TypeAdapter

from torchyard.admission import Event
from torchyard.api.base import GROUP, VERSION, Timestamp, now
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.compression import TERMINAL, plan
from torchyard.controllers import client, objects
from torchyard.controllers.children import owned_entry
from torchyard.controllers.queue import NewGenerations, WorkQueue, next_look, soonest
from torchyard.controllers.reconciler import (
    Admitted,
    admitted,
    finish,
    forget,
    just_succeeded,
    producer_of,
    register,
    registration_refused,
)
from torchyard.lineage import output_entry
from torchyard.refusals import Backoff, Refusal, on_status, pods_refused
from torchyard.resources.compression import compression_job
from torchyard.validation import parse_spec

OWNER_LABEL = f"{GROUP}/compressionjob"
PLURAL = COMPRESSION_JOB.plural
RESYNC_SECONDS = 60.0
"""A safety net: every unfinished job is reconciled at least this often."""
queue = WorkQueue(COMPRESSION_JOB.kind)
refused_creates = Backoff()
"""Jobs whose child Job the API server refused, until it is tried again."""
POD_GRACE = 3.0
"""Seconds a new child Job may be without a pod before the operator asks why."""
_TIME = TypeAdapter(Timestamp)
pod_looks = Backoff(first=5.0)
"""Jobs whose child Job has no pod: when to look for the Job controller's reason again."""
new_generations = NewGenerations()


@kopf.index(GROUP, VERSION, PLURAL)
async def compression_jobs(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): objects.compact(body)}


@kopf.index(GROUP, VERSION, PLURAL)
async def compression_outputs(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], Any]:
    """Each job by the artifact it writes, for the jobs that read it (torchyard.lineage)."""
    return output_entry(COMPRESSION_JOB.kind, namespace, body)


# Children are indexed by their owner's uid: the child Job by the CompressionJob's, its
# pods by the Job's. A Job or pod that only carries the labels is ignored.


@kopf.index("batch", "v1", "jobs", labels={OWNER_LABEL: kopf.PRESENT})
async def compression_child_jobs(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return owned_entry(COMPRESSION_JOB.kind, namespace, body)


@kopf.index("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
async def compression_pods(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return owned_entry("Job", namespace, body)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def compression_job_event(
    type: str | None, namespace: str, name: str, meta: kopf.Meta, **kwargs: Any
) -> None:
    if new_generations.wants(type, (namespace, name), int(meta.get("generation") or 0)):
        await _queue(namespace, name, kwargs)


@kopf.on.event("batch", "v1", "jobs", labels={OWNER_LABEL: kopf.PRESENT})
@kopf.on.event("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
async def compression_child_changed(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    await _queue(namespace, labels[OWNER_LABEL], kwargs)


async def _queue(namespace: str, name: str, handler_kwargs: dict[str, Any]) -> None:
    indexes = (
        handler_kwargs["compression_jobs"],
        handler_kwargs["compression_child_jobs"],
        handler_kwargs["compression_pods"],
        (handler_kwargs["training_outputs"], handler_kwargs["compression_outputs"]),
    )
    await queue.run((namespace, name), lambda: reconcile(namespace, name, *indexes))


async def reconcile(
    namespace: str,
    name: str,
    objects_index: kopf.Index,
    jobs_index: kopf.Index,
    pods_index: kopf.Index,
    outputs: tuple[kopf.Index, ...] = (),
) -> float | None:
    """Act on the plan for one job; return seconds until it must be looked at again.
    `outputs` are the job kinds' indexes by the artifact each job writes."""
    key = (namespace, name)
    indexed = objects_index.get(key, [])
    async with admitted(COMPRESSION_JOB, namespace, name, indexed) as obj:
        if obj is None or not obj.valid:
            _forget(namespace, name)
            if obj is not None:
                await finish(COMPRESSION_JOB, obj)
            return None
        spec = parse_spec(CompressionJobSpec, obj.body["spec"])
        children = list(jobs_index.get((namespace, str(obj.body["metadata"].get("uid"))), []))
        child = children[0] if children else None
        pods = list(pods_index.get((namespace, child["metadata"]["uid"]), [])) if child else []
        decided = plan(
            name,
            spec,
            {**obj.status, **obj.patch},
            obj.generation,
            child,
            pods,
            now(),
            producer=producer_of(namespace, spec.model.uri, (COMPRESSION_JOB.kind, name), outputs),
        )
        if decided.delete_object:
            _forget(namespace, name)
            await client.delete_object(COMPRESSION_JOB, namespace, name)
            return None
        events = list(decided.events)
        patch = dict(decided.status_patch)
        if decided.delete_job and child:
            await client.delete_child_job(namespace, child["metadata"]["name"])
        retries = [decided.requeue_after]
        if decided.create_job:
            if decided.model_digest and not spec.model.digest:
                model = spec.model.model_copy(update={"digest": decided.model_digest})
                spec = spec.model_copy(update={"model": model})
            retries.append(await _create_job(obj, spec, patch, events))
        else:
            refused_creates.forget(key)
        if child is not None and not pods and patch.get("phase") == "Pending":
            retries.append(await _pods_refused(obj, child, patch, events))
        else:
            pod_looks.forget(key)
        status = {**obj.status, **obj.patch}
        if just_succeeded(obj.status, patch) or registration_refused(status):
            result = patch.get("result") or status.get("result") or {}
            said, again = await register(COMPRESSION_JOB, obj, spec, result.get("artifact"), patch)
            events += said
            retries.append(again)
        obj.patch.update(patch)
        await finish(COMPRESSION_JOB, obj, events)
        phase = obj.patch.get("phase", obj.status.get("phase"))
        return next_look(phase in TERMINAL, soonest(*retries), RESYNC_SECONDS)


async def _create_job(
    obj: Admitted, spec: CompressionJobSpec, patch: dict[str, Any], events: list[Event]
) -> float | None:
    """Create the child Job unless a refused create still pauses (torchyard.refusals);
    a refusal goes into `patch` (Created=False) and `events`. Returns the seconds until
    the next try, None when nothing is refused."""
    metadata = obj.body["metadata"]
    key = (metadata["namespace"], metadata["name"])
    clock = time.monotonic()
    refusal = refused_creates.held(key, obj.generation, clock)
    retry = refused_creates.wait(key, clock) if refusal is not None else None
    if refusal is None:
        manifest = compression_job(metadata["name"], metadata["namespace"], spec, metadata["uid"])
        kopf.adopt(manifest, owner=obj.body)
        try:
            if await client.create_child(manifest):
                said = f"created Job {manifest['metadata']['name']}"
                events.append(Event("Normal", "JobCreated", said))
            refused_creates.forget(key)
        except client.Refused as refused:
            refusal = refused.refusal
            retry = refused_creates.refused(key, obj.generation, refusal, clock)
    if refusal is not None:
        _say(patch, obj, "Created", refusal, events)
    return retry


async def _pods_refused(
    obj: Admitted, child: dict[str, Any], patch: dict[str, Any], events: list[Event]
) -> float:
    """The child Job exists but has no pod: the Job controller creates pods, and when
    the API server refuses them (a quota, a missing ServiceAccount, Pod Security) it
    says so only in an Event on the Job. Read it (one list, paced by `pod_looks`) and
    say it in Running=False. Returns the seconds until the next look."""
    metadata = obj.body["metadata"]
    key = (metadata["namespace"], metadata["name"])
    clock = time.monotonic()
    created = child["metadata"].get("creationTimestamp")
    age = (now() - _TIME.validate_python(created)).total_seconds() if created else POD_GRACE
    if age < POD_GRACE:  # its pod is normally there by now: no list for a healthy job
        return POD_GRACE - age
    if pod_looks.pausing(key, obj.generation, clock):
        refusal = pod_looks.held(key, obj.generation, clock)
        retry = pod_looks.wait(key, clock) or 0.0
    else:
        message = await client.failed_create_event(metadata["namespace"], child["metadata"]["uid"])
        refusal = pods_refused(f"Job {child['metadata']['name']}", message) if message else None
        retry = pod_looks.refused(key, obj.generation, refusal, clock)
    if refusal is not None:
        _say(patch, obj, "Running", refusal, events)
    return retry


def _say(
    patch: dict[str, Any], obj: Admitted, condition: str, refusal: Refusal, events: list[Event]
) -> None:
    """Put a refusal into the status patch: the condition False, the message."""
    conditions = list(patch.get("conditions") or obj.patch.get("conditions") or [])
    stored = obj.status.get("conditions") or []
    patch["conditions"], warnings = on_status(
        conditions, condition, refusal, obj.generation, now(), stored
    )
    patch["message"] = refusal.message
    events += warnings


def _forget(namespace: str, name: str) -> None:
    """Drop what is kept about a job that is gone."""
    refused_creates.forget((namespace, name))
    pod_looks.forget((namespace, name))
    forget(COMPRESSION_JOB, namespace, name)
