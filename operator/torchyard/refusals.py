"""Children the API server refuses to create, and names another object holds. Pure.

A create refused with a 4xx (422 an invalid field, 403 a ResourceQuota, an admission
policy or RBAC, 404 something it refers to) will not succeed by trying again at once,
and a name held by an object that is not this one's child (by ownerReference uid, never
by name or labels) must not be taken over. Either way the object says so at once in a
condition (reason `FailedCreate` or `Conflict`, the API's words and what to change) and
a Warning Event, and the operator tries again after a growing pause (`Backoff`): 10 s,
then doubling up to 5 minutes, so a quota raised or a ServiceAccount created is noticed
on its own, and at once when the object's spec changes (a new generation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from torchyard.admission import Event
from torchyard.conditions import find_condition, set_condition

FAILED_CREATE = "FailedCreate"
CONFLICT = "Conflict"
RETRY = "The operator tries again by itself, and at once when the spec changes."


@dataclass(frozen=True)
class Refusal:
    """Why a child could not be created: the condition's reason and message."""

    reason: Literal["FailedCreate", "Conflict"]
    message: str


def is_refusal(code: int) -> bool:
    """Whether an answer to a create refuses the object itself: a 4xx, but not an expired
    token (401), a timeout (408), a name that exists (409, the caller's case) or
    throttling (429), which are not the object's to fix."""
    return 400 <= code < 500 and code not in (401, 408, 409, 429)


def refused(kind: str, name: str, code: int, api_message: str) -> Refusal:
    """A create the API server refused (a 4xx other than 409), with what to change."""
    said = api_message.strip().rstrip(".") or f"HTTP {code}"
    return Refusal(
        FAILED_CREATE, f"cannot create {kind} {name}: {said}. {advice(code, said)} {RETRY}"
    )


def pods_refused(owner: str, message: str) -> Refusal:
    """A controller of Kubernetes cannot create the pods of `owner` (`Job x`: the Job
    controller's FailedCreate Event; `Deployment y`: its ReplicaFailure condition)."""
    said = message.strip().rstrip(".")
    code = 403 if "forbidden" in said.lower() else 422
    return Refusal(
        FAILED_CREATE,
        f"Kubernetes cannot create the pods of {owner}: {said}. {advice(code, said)} "
        "It keeps trying; the status follows once the pods exist.",
    )


def advice(code: int, message: str) -> str:
    """What a person can change, judged from the API server's answer."""
    text = message.lower()
    if "exceeded quota" in text or "for quota" in text:
        return (
            "A ResourceQuota in the namespace refuses it: raise the quota, or ask for less "
            "(spec resources, replicas)."
        )
    if code == 403 and "cannot create resource" in text:
        return (
            "The operator's RBAC does not allow it: apply manifests/base/rbac.yaml of this release."
        )
    if "looking up service account" in text or 'serviceaccount "' in text:
        return "Create the ServiceAccount, or change spec.serviceAccountName."
    if "priorityclass" in text:
        return "Create the PriorityClass, or change priorityClassName in the spec."
    if "podsecurity" in text or "pod security" in text:
        return (
            "The namespace's Pod Security level refuses the pod (torchyard's pods meet "
            "'restricted'): check the pod-security.kubernetes.io labels of the namespace."
        )
    if code == 403:
        return "An admission policy of the namespace refuses it: change the spec or the policy."
    if code == 404:
        return "Something it refers to does not exist: create it, or change the spec."
    return (
        "The API server finds it invalid: change the spec field behind the field the "
        "message names (a pod's resources come from spec.resources)."
    )


def owners_of(body: Mapping[str, Any]) -> str:
    """Who owns an object, in words: `TrainingJob/x`, or `no owner`."""
    references = (body.get("metadata") or {}).get("ownerReferences") or []
    named = [f"{ref.get('kind')}/{ref.get('name')}" for ref in references]
    return ", ".join(named) if named else "no owner"


def taken(kind: str, name: str, holder: Mapping[str, Any], owner: str) -> Refusal:
    """`kind name` exists and is not `owner`'s: `holder` is that object as read."""
    return Refusal(
        CONFLICT,
        f"{kind} {name} already exists and is not {owner}'s (it belongs to "
        f"{owners_of(holder)}); the operator leaves it untouched. Delete or rename that "
        f"{kind}, or rename this object. {RETRY}",
    )


def owned_by(body: Mapping[str, Any], uids: Sequence[str] | set[str]) -> bool:
    """Whether one of the object's ownerReferences carries one of `uids`."""
    references = (body.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") in uids for ref in references)


def controller_uid(body: Mapping[str, Any], kind: str) -> str | None:
    """The uid of the object's controller of `kind` (its ownerReference with
    controller: true), None when it has none: what indexes of children key on."""
    references = (body.get("metadata") or {}).get("ownerReferences") or []
    for ref in references:
        if ref.get("controller") and ref.get("kind") == kind:
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def on_status(
    conditions: Sequence[dict[str, Any]],
    condition: str,
    refusal: Refusal,
    generation: int,
    now: datetime,
    stored: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[Event]]:
    """The conditions with `condition` False for `refusal`, and the Warning Event to post
    when that is news to the `stored` conditions (the object's as read), not at every
    try: a planner may have set the condition again in between. Its lastTransitionTime
    is the stored one's while it stays False, so a try that changes nothing writes
    nothing."""
    previous = find_condition(stored, condition)
    base = [c for c in conditions if c.get("type") != condition]
    updated = set_condition(
        [*base, previous] if previous else base,
        type=condition,
        status="False",
        reason=refusal.reason,
        message=refusal.message,
        generation=generation,
        now=now,
    )
    return updated, warnings(stored, condition, refusal)


def warnings(conditions: Sequence[dict[str, Any]], condition: str, refusal: Refusal) -> list[Event]:
    """The Warning Event for `refusal` when `conditions` (as stored) do not say it yet."""
    before = find_condition(conditions, condition) or {}
    news = (before.get("reason"), before.get("message")) != (refusal.reason, refusal.message)
    return [Event("Warning", refusal.reason, refusal.message)] if news else []


def was_refused(conditions: Sequence[dict[str, Any]], condition: str) -> bool:
    """Whether `condition` says a create was refused (so a success must say it is over)."""
    found = find_condition(conditions, condition) or {}
    return found.get("reason") in (FAILED_CREATE, CONFLICT)


@dataclass
class _Held:
    generation: object
    refusal: Refusal | None
    failures: int
    due: float


class Backoff:
    """When an object whose create was refused tries again. Keyed per object (and per
    child where one object has several); `forget` it with the object. `generation` is
    what a change by the user changes (the object's metadata.generation): a new one
    ends the pause at once."""

    def __init__(self, first: float = 10.0, cap: float = 300.0) -> None:
        self.first = first
        self.cap = cap
        self._held: dict[Any, _Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    def pausing(self, key: Any, generation: object, now: float) -> bool:
        """Whether the key waits: its pause has not run out and the spec is the same."""
        entry = self._held.get(key)
        return entry is not None and entry.generation == generation and now < entry.due

    def held(self, key: Any, generation: object, now: float) -> Refusal | None:
        """The refusal still in force while `pausing`. None: try to create now."""
        entry = self._held.get(key)
        return entry.refusal if entry and self.pausing(key, generation, now) else None

    def refused(self, key: Any, generation: object, refusal: Refusal | None, now: float) -> float:
        """Record a refusal (or, None, a look that found nothing yet); return the seconds
        until the next try."""
        entry = self._held.get(key)
        failures = entry.failures + 1 if entry and entry.generation == generation else 1
        delay = min(self.first * 2 ** (failures - 1), self.cap)
        self._held[key] = _Held(generation, refusal, failures, now + delay)
        return delay

    def wait(self, key: Any, now: float) -> float | None:
        """Seconds until the held key may try again; None when nothing is held."""
        entry = self._held.get(key)
        return None if entry is None else max(entry.due - now, 0.0)

    def forget(self, key: Any) -> None:
        """The create succeeded, or the object is gone."""
        self._held.pop(key, None)

    def forget_where(self, keep: Callable[[Any], bool]) -> None:
        """Forget every key for which `keep(key)` is false."""
        for key in [k for k in self._held if not keep(k)]:
            del self._held[key]
