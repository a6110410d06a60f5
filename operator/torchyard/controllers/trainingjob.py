"""Handlers for TrainingJob: one pod per replica plus a headless Service, gang restarts.

Triggers (the object, its pods, its Service, a clock for deadlines and the TTL) all
call one reconcile that reads the object fresh and acts on training.plan's decision.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kopf
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from torchyard.admission import Event
from torchyard.api.base import GROUP, VERSION, now
from torchyard.api.kinds import TRAINING_JOB
from torchyard.api.training import TrainingJobSpec
from torchyard.controllers import client
from torchyard.controllers.children import snapshot
from torchyard.controllers.progress import fetch_progress
from torchyard.controllers.reconciler import admitted, finish, just_succeeded, register
from torchyard.resources.training import REPLICA_LABEL, headless_service, training_pod
from torchyard.training import TERMINAL, plan
from torchyard.validation import parse_spec

OWNER_LABEL = f"{GROUP}/trainingjob"
PLURAL = TRAINING_JOB.plural


@kopf.index("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
def training_pods(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, labels[OWNER_LABEL]): snapshot(body)}


@kopf.index("v1", "services", labels={OWNER_LABEL: kopf.PRESENT})
def training_services(
    namespace: str, labels: kopf.Labels, name: str, **_: Any
) -> dict[tuple[str, str], str]:
    return {(namespace, labels[OWNER_LABEL]): name}


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def training_job_changed(
    namespace: str, name: str, training_pods: kopf.Index, training_services: kopf.Index, **_: Any
) -> None:
    await reconcile(namespace, name, training_pods, training_services)


@kopf.on.event("v1", "pods", labels={OWNER_LABEL: kopf.PRESENT})
@kopf.on.event("v1", "services", labels={OWNER_LABEL: kopf.PRESENT})
async def training_child_changed(
    namespace: str,
    labels: kopf.Labels,
    training_pods: kopf.Index,
    training_services: kopf.Index,
    **_: Any,
) -> None:
    await reconcile(namespace, labels[OWNER_LABEL], training_pods, training_services)


def _needs_clock(status: kopf.Status, spec: kopf.Spec, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL or spec.get("ttlSecondsAfterFinished") is not None


@kopf.timer(GROUP, VERSION, PLURAL, interval=2.0, when=_needs_clock)
async def training_job_clock(
    namespace: str, name: str, training_pods: kopf.Index, training_services: kopf.Index, **_: Any
) -> None:
    # Deadlines and the TTL fire on time from here, not at the next resync (Kubeflow #1533).
    await reconcile(namespace, name, training_pods, training_services)


def _running(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == "Running"


@kopf.timer(GROUP, VERSION, PLURAL, interval=5.0, when=_running)
async def training_job_progress(
    namespace: str, name: str, status: kopf.Status, training_pods: kopf.Index, **_: Any
) -> None:
    leader = next(
        (
            pod
            for pod in training_pods.get((namespace, name), [])
            if pod["metadata"]["labels"].get(REPLICA_LABEL) == "0"
        ),
        None,
    )
    pod_ip = ((leader or {}).get("status") or {}).get("podIP")
    if not pod_ip:
        return
    update = await fetch_progress(pod_ip)
    if update and any(status.get(key) != value for key, value in update.items()):
        await client.patch_status(TRAINING_JOB, namespace, name, update)


async def reconcile(
    namespace: str, name: str, pods_index: kopf.Index, services_index: kopf.Index
) -> None:
    async with admitted(TRAINING_JOB, namespace, name) as obj:
        if obj is None:
            return
        if not obj.valid:
            await finish(TRAINING_JOB, obj)
            return
        spec = parse_spec(TrainingJobSpec, obj.body["spec"])
        pods = list(pods_index.get((namespace, name), []))
        service_exists = bool(list(services_index.get((namespace, name), [])))
        status = {**obj.status, **obj.patch}
        decided = plan(name, spec, status, obj.generation, pods, service_exists, now())
        if decided.delete_object:
            await client.delete_object(TRAINING_JOB, namespace, name)
            return
        events = list(decided.events)
        for pod_name in decided.delete_pods:
            with contextlib.suppress(ApiError):  # already gone
                await client.api().delete(Pod, pod_name, namespace=namespace)
        if decided.create_service:
            service = headless_service(name, namespace)
            kopf.adopt(service, owner=obj.body)
            await client.create(service)
        attempt = int(decided.status_patch.get("restarts", status.get("restarts") or 0))
        created = 0
        for replica in decided.create_replicas:
            pod = training_pod(name, namespace, spec, replica, attempt)
            kopf.adopt(pod, owner=obj.body)
            created += await client.create(pod)
        if created:
            events.append(
                Event("Normal", "PodsCreated", f"created {created} pods for attempt {attempt}")
            )
        if just_succeeded(obj.status, decided.status_patch):
            artifact = decided.status_patch.get("result")
            events += await register(TRAINING_JOB, obj, spec.register_as, artifact)
        obj.patch.update(decided.status_patch)
        await finish(TRAINING_JOB, obj, events)
