"""Pure helpers for status conditions, per the Kubernetes API conventions, and the end
of a finished job's life (ttlSecondsAfterFinished), which both job planners share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from torchyard.api.base import Condition, ConditionStatus, parse_time

if TYPE_CHECKING:
    from torchyard.admission import Event
    from torchyard.refusals import Refusal


def set_condition(
    conditions: Sequence[dict[str, Any]],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Return the conditions with `type` set; lastTransitionTime moves only when status
    does. A condition set again keeps its place in the list: a list that only changed
    order would otherwise be one more status write for nothing."""
    previous = find_condition(conditions, type)
    transition = now
    if previous is not None and previous.get("status") == status:
        transition = Condition.model_validate(previous).last_transition_time
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    ).to_k8s()
    if previous is None:
        return [*conditions, updated]
    return [updated if c.get("type") == type else c for c in conditions]


def find_condition(conditions: Sequence[dict[str, Any]], type: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type), None)


class Conditions:
    """The one way a job's reconcile sets conditions: collects set() and refused()
    calls over the conditions it starts from, and the Warning Events refusals call for.
    `stored` are the object's conditions as read: a refusal is news (an Event) only
    when they do not say it yet."""

    def __init__(
        self,
        conditions: Sequence[dict[str, Any]],
        generation: int,
        now: datetime,
        stored: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.list = list(conditions)
        self.events: list[Event] = []
        self.generation = generation
        self.now = now
        self.stored = list(stored)

    def set(self, type: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.list = set_condition(
            self.list,
            type=type,
            status=status,
            reason=reason,
            message=message,
            generation=self.generation,
            now=self.now,
        )

    def refused(self, type: str, refusal: Refusal) -> None:
        """`type` False for a refused create (torchyard.refusals), with its Warning."""
        from torchyard.refusals import on_status  # refusals builds on this module

        self.list, warnings = on_status(
            self.list, type, refusal, self.generation, self.now, self.stored
        )
        self.events += warnings

    def find(self, type: str) -> dict[str, Any] | None:
        return find_condition(self.list, type)


@dataclass(frozen=True)
class EndOfLife:
    """What a finished job's TTL says now: delete it, or look again in `delay` seconds
    (None: it has no TTL, or has not finished)."""

    delete: bool
    delay: float | None


def seconds_left(seconds: int | None, since: str | None, now: datetime) -> float | None:
    """Seconds from `now` until `seconds` after the moment `since` (a deadline, a TTL);
    None without either. In seconds, not dates: since + seconds overflows datetime for a
    huge value (one stored before the API capped it), and a planner must never raise."""
    if seconds is None or not since:
        return None
    moment = parse_time(since)
    return seconds - (now - moment).total_seconds()


def end_of_life(ttl_seconds: int | None, completion: str | None, now: datetime) -> EndOfLife:
    """Whether a finished job is due for deletion (ttlSecondsAfterFinished), or when."""
    delay = seconds_left(ttl_seconds, completion, now)
    if delay is not None and delay <= 0:
        return EndOfLife(True, None)
    return EndOfLife(False, delay)
