"""Handlers for CompressionJob: run it as a batch/v1 Job and mirror its progress in status.

Every trigger (the object itself, its child Job, its pods, a clock for the TTL) calls
the same reconcile, which reads the object fresh, decides with pure functions
(admission.admit, compression.plan) and acts.
"""

from __future__ import annotations

from typing import Any

import kopf

from torchyard.admission import Event
from torchyard.api.base import GROUP, VERSION, now
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.compression import TERMINAL, plan
from torchyard.controllers import client
from torchyard.controllers.children import snapshot
from torchyard.controllers.reconciler import admitted, finish, just_succeeded, register
from torchyard.resources.compression import compression_job
from torchyard.validation import parse_spec

OWNER_LABEL = f"{GROUP}/compressionjob"
PLURAL = COMPRESSION_JOB.plural


@kopf.index("batch", "v1", "jobs", labels={OWNER_LABEL: kopf.PRESENT})
def compression_child_jobs(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, labels[OWNER_LABEL]): snapshot(body)}


@kopf.index("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
def compression_pods(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, labels[OWNER_LABEL]): snapshot(body)}


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def compression_job_changed(
    namespace: str,
    name: str,
    compression_child_jobs: kopf.Index,
    compression_pods: kopf.Index,
    **_: Any,
) -> None:
    await reconcile(namespace, name, compression_child_jobs, compression_pods)


@kopf.on.event("batch", "v1", "jobs", labels={OWNER_LABEL: kopf.PRESENT})
@kopf.on.event("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
async def compression_child_changed(
    namespace: str,
    labels: kopf.Labels,
    compression_child_jobs: kopf.Index,
    compression_pods: kopf.Index,
    **_: Any,
) -> None:
    await reconcile(namespace, labels[OWNER_LABEL], compression_child_jobs, compression_pods)


def _needs_clock(status: kopf.Status, spec: kopf.Spec, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL or spec.get("ttlSecondsAfterFinished") is not None


@kopf.timer(GROUP, VERSION, PLURAL, interval=2.0, when=_needs_clock)
async def compression_job_clock(
    namespace: str,
    name: str,
    compression_child_jobs: kopf.Index,
    compression_pods: kopf.Index,
    **_: Any,
) -> None:
    # A safety net for missed events, and the TTL clock: fires on time, not at a resync.
    await reconcile(namespace, name, compression_child_jobs, compression_pods)


async def reconcile(
    namespace: str, name: str, jobs_index: kopf.Index, pods_index: kopf.Index
) -> None:
    async with admitted(COMPRESSION_JOB, namespace, name) as obj:
        if obj is None:
            return
        if not obj.valid:
            await finish(COMPRESSION_JOB, obj)
            return
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
        )
        if decided.delete_object:
            await client.delete_object(COMPRESSION_JOB, namespace, name)
            return
        events = list(decided.events)
        if decided.create_job:
            manifest = compression_job(name, namespace, spec)
            kopf.adopt(manifest, owner=obj.body)
            if await client.create(manifest):
                events.append(
                    Event("Normal", "JobCreated", f"created Job {manifest['metadata']['name']}")
                )
        if just_succeeded(obj.status, decided.status_patch):
            artifact = (decided.status_patch.get("result") or {}).get("artifact")
            events += await register(COMPRESSION_JOB, obj, spec.register_as, artifact)
        obj.patch.update(decided.status_patch)
        await finish(COMPRESSION_JOB, obj, events)
