"""Decide how a freshly seen or changed object is accepted: pure, no API calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from torchyard.api.kinds import Kind
from torchyard.conditions import find_condition, set_condition
from torchyard.factories import REASON as FACTORY_NOT_ALLOWED
from torchyard.factories import FactoryNotAllowed, is_allowed, named_factories
from torchyard.validation import InvalidSpec, parse_spec

ACCEPTED = "Accepted"
REASON_VALID = "SpecValid"
REASON_INVALID = "InvalidSpec"
REFUSALS = (REASON_INVALID, FACTORY_NOT_ALLOWED)
"""Reasons an object is refused until its spec (or the operator's settings) change."""


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status_patch: dict[str, Any]
    events: list[Event] = field(default_factory=list)


def admit(
    kind: Kind,
    spec: dict[str, Any],
    status: dict[str, Any],
    generation: int,
    now: datetime,
    allowed_factories: tuple[str, ...] = (),
) -> Decision:
    """Validate the spec again in code and record the verdict in status.

    The API server already enforces the schema and CEL rules; this catches objects
    stored before a rule existed and keeps the operator honest about what it parsed.
    It also refuses a factory (`model.factory`...) that is neither torchyard's nor in
    `allowed_factories` (the operator's --allowed-factories): the API server cannot know
    that list, and no pod should start only to refuse it.
    """
    conditions = status.get("conditions") or []
    before = find_condition(conditions, ACCEPTED)
    try:
        parsed = parse_spec(kind.spec, spec)
    except InvalidSpec as error:
        message = f"{error}. Fix the spec and apply it again."
        return _refused(REASON_INVALID, message, conditions, generation, now)
    for where, factory in named_factories(parsed):
        if not is_allowed(factory, allowed_factories):
            message = str(FactoryNotAllowed(factory, allowed_factories, where))
            return _refused(FACTORY_NOT_ALLOWED, message, conditions, generation, now)

    message = f"{kind.kind} spec is valid (generation {generation})"
    phase = status.get("phase")
    if phase is None or (
        phase == "Failed" and before is not None and before.get("reason") in REFUSALS
    ):
        phase = "Pending"
    patch = {
        "phase": phase,
        "observedGeneration": generation,
        "message": message,
        "conditions": set_condition(
            conditions,
            type=ACCEPTED,
            status="True",
            reason=REASON_VALID,
            message=message,
            generation=generation,
            now=now,
        ),
    }
    unchanged = (
        before is not None
        and before.get("status") == "True"
        and status.get("observedGeneration") == generation
    )
    events = [] if unchanged else [Event("Normal", ACCEPTED, message)]
    return Decision(patch, events)


def _refused(
    reason: str, message: str, conditions: list[dict[str, Any]], generation: int, now: datetime
) -> Decision:
    patch = {
        "phase": "Failed",
        "observedGeneration": generation,
        "message": message,
        "conditions": set_condition(
            conditions,
            type=ACCEPTED,
            status="False",
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        ),
    }
    return Decision(patch, [Event("Warning", reason, message)])
