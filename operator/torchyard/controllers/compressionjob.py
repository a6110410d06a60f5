"""Handlers for CompressionJob: run it as a batch/v1 Job and mirror its progress in status.

Every trigger (a new job or a new generation of one, its child Job, its pods) queues
the same reconcile (torchyard.controllers.queue), which takes the latest copy of the
object from the watch, decides with pure functions (admission.admit, compression.plan)
and acts; the TTL and a resync while the job runs come back as requeue delays. No kopf
change handlers or timers, for the reasons given in torchyard.controllers.trainingjob.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kopf

from torchyard.admission import Event
from torchyard.api.base import GROUP, VERSION, parse_time
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.conditions import Conditions
from torchyard.controllers import client, jobs, objects
from torchyard.controllers.children import owned_entry
from torchyard.controllers.queue import NewGenerations, WorkQueue
from torchyard.controllers.reconciler import Admitted
from torchyard.plans.compression import CompressionObserved, Plan, is_suspended, plan
from torchyard.plans.lineage import Producer, output_entry
from torchyard.plans.names import TERMINAL, Phase
from torchyard.refusals import Backoff, Refusal, pods_refused
from torchyard.resources.compression import compression_job

OWNER_LABEL = f"{GROUP}/compressionjob"
PLURAL = COMPRESSION_JOB.plural
queue = WorkQueue(COMPRESSION_JOB.kind)
refused_creates = Backoff()
"""Jobs whose child Job the API server refused, until it is tried again."""
POD_GRACE = 3.0
"""Seconds a new child Job may be without a pod before the operator asks why."""
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
    """Each job by the artifact it writes, for the jobs that read it (torchyard.plans.lineage)."""
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
    """Act on the plan for one job (torchyard.controllers.jobs); return seconds until it
    must be looked at again. `outputs` are the job kinds' indexes by the artifact each
    job writes."""
    indexes = jobs.Indexes(objects_index, (jobs_index, pods_index), outputs)
    return await jobs.reconcile(KIND, namespace, name, indexes)


@dataclass(frozen=True)
class _Observed:
    child: dict[str, Any] | None
    pods: list[dict[str, Any]]


class _CompressionJobs(jobs.JobKind):
    kind = COMPRESSION_JOB
    terminal = TERMINAL
    # The attempt counted and its start time, from the child Job: facts that are as
    # true when written with the next news.
    quiet = frozenset({"message", "attempts", "startTime"})

    def observe(self, obj: Admitted, children: Sequence[kopf.Index]) -> _Observed:
        jobs_index, pods_index = children
        metadata = obj.body["metadata"]
        found = list(jobs_index.get((metadata["namespace"], str(metadata.get("uid"))), []))
        child = found[0] if found else None
        if child is None:
            return _Observed(None, [])
        return _Observed(
            child, list(pods_index.get((metadata["namespace"], child["metadata"]["uid"]), []))
        )

    def plan(
        self,
        obj: Admitted,
        spec: CompressionJobSpec,
        status: dict[str, Any],
        observed: _Observed,
        when: datetime,
        producer: Producer | None,
    ) -> Plan:
        return plan(
            CompressionObserved(
                name=obj.body["metadata"]["name"],
                spec=spec,
                status=status,
                generation=obj.generation,
                job=observed.child,
                pods=observed.pods,
                now=when,
                producer=producer,
            )
        )

    async def act(
        self,
        obj: Admitted,
        spec: CompressionJobSpec,
        decided: Plan,
        observed: _Observed,
        patch: dict[str, Any],
        events: list[Event],
    ) -> list[float | None]:
        metadata = obj.body["metadata"]
        key = (metadata["namespace"], metadata["name"])
        child = observed.child
        if decided.delete_job and child:
            await client.delete_child_job(metadata["namespace"], child["metadata"]["name"])
        retries: list[float | None] = []
        if decided.create_job:
            if decided.model_digest and not spec.model.digest:
                model = spec.model.model_copy(update={"digest": decided.model_digest})
                spec = spec.model_copy(update={"model": model})
            retries.append(await _create_job(obj, spec, patch, events))
        else:
            refused_creates.forget(key)
        # A suspended Job (Kueue holds it until its queue admits it) makes no pods yet,
        # and none was refused.
        waiting = child is not None and not observed.pods and not is_suspended(child)
        if waiting and patch.get("phase") == Phase.PENDING:
            retries.append(await _pods_refused(obj, child, patch, events))
        else:
            pod_looks.forget(key)
        return retries

    def artifact(self, status: Mapping[str, Any]) -> dict[str, Any] | None:
        return (status.get("result") or {}).get("artifact")

    def forget(self, key: tuple[str, str]) -> None:
        refused_creates.forget(key)
        pod_looks.forget(key)

    def after(self, obj: Admitted, phase: str | None, observed: _Observed) -> None:
        """Nothing: a CompressionJob's progress is its child Job's."""


KIND = _CompressionJobs()


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
        manifest = compression_job(
            metadata["name"], metadata["namespace"], spec, metadata["uid"], metadata.get("labels")
        )
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
    age = (obj.now - parse_time(created)).total_seconds() if created else POD_GRACE
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
    conditions = Conditions(
        patch.get("conditions") or obj.patch.get("conditions") or [],
        obj.generation,
        obj.now,
        obj.status.get("conditions") or [],
    )
    conditions.refused(condition, refusal)
    patch["conditions"] = conditions.list
    patch["message"] = refusal.message
    events += conditions.events
