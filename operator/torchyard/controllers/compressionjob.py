"""Handlers for CompressionJob: run it as a batch/v1 Job and mirror its progress in status.

Every trigger (a new job or a new generation of one, its child Job, its pods) queues
the same reconcile (torchyard.controllers.queue), which takes the latest copy of the
object from the watch, decides with pure functions (admission.admit, compression.plan)
and acts; the TTL and a resync while the job runs come back as requeue delays. No kopf
change handlers or timers, for the reasons given in torchyard.controllers.trainingjob.
"""

from __future__ import annotations

from typing import Any

import kopf

from torchyard.admission import Event
from torchyard.api.base import GROUP, VERSION, now
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.compression import TERMINAL, plan
from torchyard.controllers import client, objects
from torchyard.controllers.children import snapshot
from torchyard.controllers.queue import NewGenerations, WorkQueue, next_look
from torchyard.controllers.reconciler import (
    admitted,
    finish,
    just_succeeded,
    producer_of,
    register,
)
from torchyard.lineage import output_entry
from torchyard.resources.compression import compression_job
from torchyard.validation import parse_spec

OWNER_LABEL = f"{GROUP}/compressionjob"
PLURAL = COMPRESSION_JOB.plural
RESYNC_SECONDS = 60.0
"""A safety net: every unfinished job is reconciled at least this often."""
queue = WorkQueue(COMPRESSION_JOB.kind)
new_generations = NewGenerations()


@kopf.index(GROUP, VERSION, PLURAL)
async def compression_jobs(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): objects.compact(body)}


@kopf.index(GROUP, VERSION, PLURAL)
async def compression_outputs(
    namespace: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], Any] | None:
    """Each job by the artifact it writes, for the jobs that read it (torchyard.lineage)."""
    return output_entry(COMPRESSION_JOB.kind, namespace, body)


@kopf.index("batch", "v1", "jobs", labels={OWNER_LABEL: kopf.PRESENT})
async def compression_child_jobs(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, labels[OWNER_LABEL]): snapshot(body)}


@kopf.index("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
async def compression_pods(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, labels[OWNER_LABEL]): snapshot(body)}


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
    indexed = objects_index.get((namespace, name), [])
    async with admitted(COMPRESSION_JOB, namespace, name, indexed) as obj:
        if obj is None:
            return None
        if not obj.valid:
            await finish(COMPRESSION_JOB, obj)
            return None
        spec = parse_spec(CompressionJobSpec, obj.body["spec"])
        children = list(jobs_index.get((namespace, name), []))
        pods = list(pods_index.get((namespace, name), []))
        decided = plan(
            name,
            spec,
            {**obj.status, **obj.patch},
            obj.generation,
            children[0] if children else None,
            pods,
            now(),
            producer=producer_of(namespace, spec.model.uri, (COMPRESSION_JOB.kind, name), outputs),
        )
        if decided.delete_object:
            await client.delete_object(COMPRESSION_JOB, namespace, name)
            return None
        events = list(decided.events)
        if decided.delete_job and children:
            await client.delete_child_job(namespace, children[0]["metadata"]["name"])
        if decided.create_job:
            if decided.model_digest and not spec.model.digest:
                model = spec.model.model_copy(update={"digest": decided.model_digest})
                spec = spec.model_copy(update={"model": model})
            manifest = compression_job(name, namespace, spec, obj.body["metadata"]["uid"])
            kopf.adopt(manifest, owner=obj.body)
            if await client.create(manifest):
                events.append(
                    Event("Normal", "JobCreated", f"created Job {manifest['metadata']['name']}")
                )
        if just_succeeded(obj.status, decided.status_patch):
            artifact = (decided.status_patch.get("result") or {}).get("artifact")
            events += await register(COMPRESSION_JOB, obj, spec, artifact)
        obj.patch.update(decided.status_patch)
        await finish(COMPRESSION_JOB, obj, events)
        phase = obj.patch.get("phase", obj.status.get("phase"))
        return next_look(phase in TERMINAL, decided.requeue_after, RESYNC_SECONDS)
