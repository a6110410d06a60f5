"""Handlers for CompressionJob: run it as a batch/v1 Job and mirror its progress in status.

Every trigger (the object itself, its child Job, its pods, a clock for the TTL) calls
the same reconcile, which reads the object fresh, decides with pure functions
(admission.admit, compression.plan) and acts. A per-object lock keeps two triggers
from acting on the same object at once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import kopf

from torchyard.admission import admit
from torchyard.api.base import GROUP, VERSION, now
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.compression import TERMINAL, plan
from torchyard.controllers import client
from torchyard.controllers.children import changed_fields, snapshot
from torchyard.resources.compression import compression_job
from torchyard.validation import parse_spec

OWNER_LABEL = f"{GROUP}/compressionjob"
PLURAL = COMPRESSION_JOB.plural
_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)


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
    async with _locks[(namespace, name)]:
        body = await client.get_object(COMPRESSION_JOB, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        generation = body["metadata"]["generation"]
        status = dict(body.get("status") or {})
        admission = admit(COMPRESSION_JOB, body.get("spec") or {}, status, generation, now())
        events = list(admission.events)
        patch = dict(admission.status_patch)
        if patch.get("phase") == "Failed" and status.get("phase") not in TERMINAL:
            await _finish(body, status, patch, events)
            return
        spec = parse_spec(CompressionJobSpec, body["spec"])
        children = list(jobs_index.get((namespace, name), []))
        pods = list(pods_index.get((namespace, name), []))
        decided = plan(
            name,
            spec,
            {**status, **patch},
            generation,
            children[0] if children else None,
            pods,
            now(),
        )
        if decided.delete_object:
            await client.delete_object(COMPRESSION_JOB, namespace, name)
            return
        if decided.create_job:
            manifest = compression_job(name, namespace, spec)
            kopf.adopt(manifest, owner=body)
            if await client.create(manifest):
                events.append(_created_event(manifest))
        patch.update(decided.status_patch)
        events += decided.events
        await _finish(body, status, patch, events)


async def _finish(
    body: dict[str, Any], status: dict[str, Any], patch: dict[str, Any], events: list[Any]
) -> None:
    metadata = body["metadata"]
    changed = changed_fields(status, patch)
    if changed:
        await client.patch_status(COMPRESSION_JOB, metadata["namespace"], metadata["name"], changed)
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _created_event(manifest: dict[str, Any]) -> Any:
    from torchyard.admission import Event

    return Event("Normal", "JobCreated", f"created Job {manifest['metadata']['name']}")
