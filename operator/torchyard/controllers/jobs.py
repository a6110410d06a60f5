"""The one reconcile of the job kinds (TrainingJob, CompressionJob), after Kueue's
jobframework: the skeleton lives here once, and each kind supplies what differs behind
a small interface (`JobKind`, Kueue's GenericJob): how it finds its children, its pure
planner, how it creates and deletes children, what it keeps per job.

The skeleton: admit (torchyard.controllers.reconciler) -> plan -> delete the object when
the plan says so (its TTL) -> act on children (refused creates back off) -> register the
artifact (spec.registerAs) once it has succeeded -> write status (guarded by
resourceVersion) and post Events -> the next look (deadlines, TTL, a resync while it runs).

Status is written when it says something new: a phase, a condition's status or reason,
a result, an Event posted. A change of wording only (a pending pod's reason, one replica
of several running, a Job's first attempt counted) waits up to SETTLE_SECONDS for the
next news and goes with it; a job that stays as it is gets it written then. That is how
a job makes one write per phase it is seen in (docs/performance.md).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import kopf

from torchyard.admission import Event
from torchyard.api.kinds import Kind
from torchyard.controllers import client
from torchyard.controllers.children import changed_fields
from torchyard.controllers.queue import next_look, soonest
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
from torchyard.plans.lineage import Producer
from torchyard.validation import parse_spec

RESYNC_SECONDS = 60.0
"""A safety net: every unfinished job is reconciled at least this often."""
SETTLE_SECONDS = 5.0
"""How long a change of wording alone may wait for news to be written with."""
Key = tuple[str, str]


class JobPlan(Protocol):
    """What both planners decide (training.TrainingPlan, compression.Plan)."""

    @property
    def status_patch(self) -> dict[str, Any]: ...
    @property
    def events(self) -> list[Event]: ...
    @property
    def delete_object(self) -> bool: ...
    @property
    def requeue_after(self) -> float | None: ...


@dataclass(frozen=True)
class Indexes:
    """The kopf indexes a reconcile reads: the kind's objects, its children (as the
    kind's `observe` wants them), and every job kind's outputs (torchyard.plans.lineage)."""

    objects: kopf.Index
    children: tuple[kopf.Index, ...]
    outputs: tuple[kopf.Index, ...] = ()


class JobKind(ABC):
    """What a job kind supplies to the shared reconcile."""

    kind: Kind
    terminal: tuple[str, ...]
    quiet: frozenset[str] = frozenset({"message"})
    """Status fields whose change alone is wording (it waits, see the module)."""

    @abstractmethod
    def observe(self, obj: Admitted, children: Sequence[kopf.Index]) -> Any:
        """The job's children as the watch shows them."""

    @abstractmethod
    def plan(
        self,
        obj: Admitted,
        spec: Any,
        status: dict[str, Any],
        observed: Any,
        when: datetime,
        producer: Producer | None,
    ) -> JobPlan:
        """The kind's pure planner on what was observed."""

    @abstractmethod
    async def act(
        self,
        obj: Admitted,
        spec: Any,
        decided: Any,
        observed: Any,
        patch: dict[str, Any],
        events: list[Event],
    ) -> list[float | None]:
        """Delete and create children as `decided`; refusals go into `patch` and
        `events`. Returns the seconds until each pending retry."""

    @abstractmethod
    def forget(self, key: Key) -> None:
        """Drop what the kind keeps about a job that is gone."""

    def artifact(self, status: Mapping[str, Any]) -> dict[str, Any] | None:
        """The artifact to register (spec.registerAs) from a succeeded job's status."""
        return status.get("result")

    @abstractmethod
    def after(self, obj: Admitted, phase: str | None, observed: Any) -> None:
        """What the kind does once status is written (training follows progress)."""


class Settling:
    """Per job, since when a change of wording alone has waited (monotonic seconds);
    forgotten with the job."""

    def __init__(self, seconds: float = SETTLE_SECONDS) -> None:
        self.seconds = seconds
        self._since: dict[Key, float] = {}

    def __len__(self) -> int:
        return len(self._since)

    def wait(self, key: Key, wording_only: bool, clock: float) -> float | None:
        """Seconds the write may still wait; None: write now."""
        if not wording_only:
            self._since.pop(key, None)
            return None
        left = self._since.setdefault(key, clock) + self.seconds - clock
        if left > 0:
            return left
        self._since.pop(key, None)
        return None

    def forget(self, key: Key) -> None:
        self._since.pop(key, None)


settling = Settling()


def wording_only(
    status: Mapping[str, Any], patch: Mapping[str, Any], quiet: frozenset[str]
) -> bool:
    """Whether everything `patch` changes in `status` is wording: `quiet` fields,
    conditions with the same status and reason, replicas with the same pods."""
    changed = changed_fields(status, patch)
    return bool(changed) and all(_same_gist(k, status.get(k), v, quiet) for k, v in changed.items())


def _same_gist(key: str, before: Any, after: Any, quiet: frozenset[str]) -> bool:
    if key in quiet:
        return True
    if key == "conditions":
        fields = ("type", "status", "reason")
        return _gist(before, fields) == _gist(after, fields)
    if key == "replicaStatuses":
        return _gist(before, ("index", "pod")) == _gist(after, ("index", "pod"))
    return False


def _gist(entries: Any, keys: tuple[str, ...]) -> set[tuple[Any, ...]]:
    return {tuple(entry.get(k) for k in keys) for entry in entries or []}


async def reconcile(job: JobKind, namespace: str, name: str, indexes: Indexes) -> float | None:
    """Act on the plan for one job; return seconds until it must be looked at again."""
    key = (namespace, name)
    async with admitted(job.kind, namespace, name, indexes.objects.get(key, [])) as obj:
        if obj is None or not obj.valid:
            _forget(job, key)
            if obj is not None:
                await finish(job.kind, obj)
            return None
        spec = parse_spec(job.kind.spec, obj.body["spec"])
        observed = job.observe(obj, indexes.children)
        status = {**obj.status, **obj.patch}
        uri = spec.model.uri  # type: ignore[attr-defined]
        producer = producer_of(namespace, uri, (job.kind.kind, name), indexes.outputs)
        decided = job.plan(obj, spec, status, observed, obj.now, producer)
        if decided.delete_object:
            _forget(job, key)
            await client.delete_object(job.kind, namespace, name)
            return None
        events = list(decided.events)
        patch = dict(decided.status_patch)
        if "message" not in patch and obj.status.get("message"):
            # Admission's "spec is valid" only fills an empty status: it must not
            # replace what a finished job said (and cost a write to do so).
            patch["message"] = obj.status["message"]
        retries = await job.act(obj, spec, decided, observed, patch, events)
        retries.append(decided.requeue_after)
        if just_succeeded(obj.status, patch) or registration_refused(status):
            artifact = job.artifact({**status, **patch})
            said, again = await register(job.kind, obj, spec, artifact, patch)
            events += said
            retries.append(again)
        obj.patch.update(patch)
        news = bool(events or obj.events) or not wording_only(obj.status, obj.patch, job.quiet)
        hold = settling.wait((job.kind.kind, *key), not news, time.monotonic())
        await finish(job.kind, obj, events, write=hold is None)
        retries.append(hold)
        phase = obj.patch.get("phase", obj.status.get("phase"))  # held: the same phase
        job.after(obj, phase, observed)
        return next_look(phase in job.terminal, soonest(*retries), RESYNC_SECONDS)


def _forget(job: JobKind, key: Key) -> None:
    job.forget(key)
    settling.forget((job.kind.kind, *key))
    forget(job.kind, *key)
