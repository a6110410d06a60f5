"""Decide how a freshly seen or changed object is accepted: pure, no API calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from torchyard.api.kinds import Kind
from torchyard.conditions import find_condition, set_condition
from torchyard.validation import InvalidSpec, parse_spec

ACCEPTED = "Accepted"
REASON_VALID = "SpecValid"
REASON_INVALID = "InvalidSpec"


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
    kind: Kind, spec: dict[str, Any], status: dict[str, Any], generation: int, now: datetime
) -> Decision:
    """Validate the spec again in code and record the verdict in status.

    The API server already enforces the schema and CEL rules; this catches objects
    stored before a rule existed and keeps the operator honest about what it parsed.
    """
    conditions = status.get("conditions") or []
    before = find_condition(conditions, ACCEPTED)
    try:
        parse_spec(kind.spec, spec)
    except InvalidSpec as error:
        message = f"{error}. Fix the spec and apply it again."
        patch = {
            "phase": "Failed",
            "observedGeneration": generation,
            "message": message,
            "conditions": set_condition(
                conditions,
                type=ACCEPTED,
                status="False",
                reason=REASON_INVALID,
                message=message,
                generation=generation,
                now=now,
            ),
        }
        return Decision(patch, [Event("Warning", REASON_INVALID, message)])

    message = f"{kind.kind} spec is valid (generation {generation})"
    phase = status.get("phase")
    if phase is None or (
        phase == "Failed" and before is not None and before.get("reason") == REASON_INVALID
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
