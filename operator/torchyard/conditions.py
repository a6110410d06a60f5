"""Pure helpers for status conditions, per the Kubernetes API conventions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from torchyard.api.base import Condition, ConditionStatus


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
    """Return the conditions with `type` set; lastTransitionTime moves only when status does."""
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
    others = [condition for condition in conditions if condition.get("type") != type]
    return [*others, updated]


def find_condition(conditions: Sequence[dict[str, Any]], type: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type), None)
