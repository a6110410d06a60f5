"""The steps every job reconcile shares: the latest copy of the object (no API read,
torchyard.controllers.objects), admission, and writing the outcome (status through the
subresource, guarded by the copy's resourceVersion, then Events). One reconcile at a
time per object is the work queue's job (torchyard.controllers.queue)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf

from torchyard.admission import ACCEPTED, Event, admit
from torchyard.api.base import now
from torchyard.api.compression import CompressionJobSpec
from torchyard.api.kinds import MODEL_VERSION, Kind
from torchyard.api.training import TrainingJobSpec
from torchyard.conditions import Conditions, find_condition
from torchyard.controllers import client, objects
from torchyard.controllers.children import changed_fields
from torchyard.controllers.queue import Stale
from torchyard.factories import allowed_factories
from torchyard.metrics import reconciling
from torchyard.plans.lineage import Producer, find_producer
from torchyard.plans.names import Phase
from torchyard.refusals import FAILED_CREATE, Backoff
from torchyard.resources.registration import REGISTERED_BY, model_version
from torchyard.storage import normalize_uri

REGISTERED = "Registered"
registrations = Backoff()
"""Jobs whose registerAs create was refused, until it is tried again."""


@dataclass
class Admitted:
    """An object read fresh, with the admission verdict folded into its status."""

    body: dict[str, Any]
    status: dict[str, Any]
    patch: dict[str, Any]
    events: list[Event]
    valid: bool
    now: datetime = field(default_factory=lambda: now())
    """The reconcile's time, read once: every time it writes is this one."""

    @property
    def generation(self) -> int:
        return int(self.body["metadata"]["generation"])


@asynccontextmanager
async def admitted(
    kind: Kind, namespace: str, name: str, indexed: Iterable[Mapping[str, Any]]
) -> AsyncIterator[Admitted | None]:
    """Yield the object admitted, or None if it is gone. `indexed` is the watch's copy
    (the kind's kopf index entry); the API is read only when neither it nor a copy
    from the operator's own last write is known."""
    with reconciling(kind.kind):
        yield await _read(kind, namespace, name, indexed)


async def _read(
    kind: Kind, namespace: str, name: str, indexed: Iterable[Mapping[str, Any]]
) -> Admitted | None:
    body = objects.latest(kind.kind, namespace, name, indexed)
    if body is None:
        body = await client.get_object(kind, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    status = dict(body.get("status") or {})
    generation = int(body["metadata"]["generation"])
    when = now()
    verdict = admit(kind, body.get("spec") or {}, status, generation, when, allowed_factories())
    accepted = find_condition(verdict.status_patch["conditions"], ACCEPTED) or {}
    valid = accepted.get("status") == "True"
    return Admitted(body, status, dict(verdict.status_patch), list(verdict.events), valid, when)


async def finish(
    kind: Kind, obj: Admitted, events: Sequence[Event] = (), *, write: bool = True
) -> None:
    """Write what changed in status (unless it waits: torchyard.controllers.jobs), then
    post the Events."""
    metadata = obj.body["metadata"]
    changed = changed_fields(obj.status, obj.patch) if write else {}
    if changed:
        namespace, name = metadata["namespace"], metadata["name"]
        written = await client.patch_status(
            kind, namespace, name, changed, resource_version=metadata.get("resourceVersion")
        )
        if written is None:  # the copy was out of date, or the object is gone
            fresh = await client.get_object(kind, namespace, name)
            if fresh is None:
                return  # deleted while it was reconciled: nothing left to report on
            objects.remember(kind.kind, fresh)
            raise Stale(f"{kind.kind} {namespace}/{name} changed since it was read")
        objects.remember(kind.kind, written)
    for event in [*obj.events, *events]:
        kopf.event(obj.body, type=event.type, reason=event.reason, message=event.message)


async def register(
    kind: Kind,
    obj: Admitted,
    spec: CompressionJobSpec | TrainingJobSpec,
    artifact: dict[str, Any] | None,
    patch: dict[str, Any],
) -> tuple[list[Event], float | None]:
    """Create the ModelVersion a succeeded job asked for (spec.registerAs), and say how
    it went in the `Registered` condition (in `patch`). A create the API server refuses
    (a quota, an invalid name) is tried again after a pause (torchyard.refusals): the
    seconds until then come back, with the Events to post."""
    register_as = spec.register_as
    if register_as is None:
        return [], None
    metadata = obj.body["metadata"]
    if not artifact or not artifact.get("digest"):
        return [Event("Warning", "RegistrationSkipped", "no artifact digest to register")], None
    key = (kind.kind, metadata["namespace"], metadata["name"])
    clock = time.monotonic()
    if registrations.held(key, obj.generation, clock) is not None:
        return [], registrations.wait(key, clock)
    manifest = model_version(
        register_as,
        artifact,
        metadata["namespace"],
        f"{kind.singular}.{metadata['name']}",
        storage=spec.storage,
        service_account_name=spec.service_account_name,
    )
    name = manifest["metadata"]["name"]
    conditions = Conditions(
        patch.get("conditions") or obj.patch.get("conditions") or [],
        obj.generation,
        obj.now,
        obj.status.get("conditions") or [],
    )
    try:
        created = await client.create(manifest)
    except client.Refused as refused:
        retry = registrations.refused(key, obj.generation, refused.refusal, clock)
        conditions.refused(REGISTERED, refused.refusal)
        patch["conditions"] = conditions.list
        return conditions.events, retry
    registrations.forget(key)
    if not created:
        # Ours already when this job registered it and its Succeeded write then lost a
        # race (409): the reconcile that follows must not call that a conflict.
        created = await _registered_by(manifest, metadata["namespace"], name)
    if created:
        said = f"registered ModelVersion {name}"
        event = Event("Normal", "Registered", said)
    else:
        said = f"ModelVersion {name} already exists; choose another registerAs.version"
        event = Event("Warning", "RegistrationConflict", said)
    conditions.set(REGISTERED, "True" if created else "False", event.reason, said)
    patch["conditions"] = conditions.list
    return [event], None


async def _registered_by(manifest: dict[str, Any], namespace: str, name: str) -> bool:
    """Whether the existing ModelVersion `name` is the one `manifest` describes: made by
    the same job (its registered-by label) for the same artifact digest."""
    found = await client.get_object(MODEL_VERSION, namespace, name)
    if found is None:
        return False
    label = (found["metadata"].get("labels") or {}).get(REGISTERED_BY)
    digest = ((found.get("spec") or {}).get("artifact") or {}).get("digest")
    wanted = manifest["metadata"]["labels"].get(REGISTERED_BY)
    return label == wanted and digest == manifest["spec"]["artifact"]["digest"]


def registration_refused(status: dict[str, Any]) -> bool:
    """A succeeded job whose registerAs create was refused: it tries again."""
    found = find_condition(status.get("conditions") or [], REGISTERED) or {}
    return status.get("phase") == Phase.SUCCEEDED and found.get("reason") == FAILED_CREATE


def forget(kind: Kind, namespace: str, name: str) -> None:
    """Drop what is kept about a job that is gone."""
    registrations.forget((kind.kind, namespace, name))


def just_succeeded(status: dict[str, Any], patch: dict[str, Any]) -> bool:
    """The patch moves a job into Succeeded (once: later reconciles see it there)."""
    return patch.get("phase") == Phase.SUCCEEDED and status.get("phase") != Phase.SUCCEEDED


def producer_of(
    namespace: str, model_uri: str | None, consumer: tuple[str, str], outputs: Iterable[kopf.Index]
) -> Producer | None:
    """The job in `namespace` that writes `model_uri` (torchyard.plans.lineage), from the job
    kinds' indexes by output URI."""
    if model_uri is None:
        return None
    key = (namespace, normalize_uri(model_uri))
    return find_producer(model_uri, consumer, [p for index in outputs for p in index.get(key, [])])
