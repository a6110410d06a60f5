"""A model's rollout history (status.history): which version ended a rollout how, why
and when, newest first. Pure.

Every version of the model carries the same history, so `kubectl get mv <any> -o yaml`
shows it and it outlives the versions it names (a deleted version's entries stay in the
others'). An entry is made by the plan that moves a version to an outcome (Serving,
RolledBack, Failed), from the reason and message of its Progressing condition, and is
carried from plan to plan through the versions' statuses.

Each version's status is written on its own, so a plan may write the history to one
version and fail to write the phase change to another; the next plan then makes the
entry again, a moment later. Entries for the same version, outcome and reason less than
`SAME_WITHIN_SECONDS` apart are therefore one (the later kept: it is the write that
landed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from torchyard.api.base import parse_time, rfc3339
from torchyard.conditions import find_condition

OUTCOMES = ("Serving", "RolledBack", "Failed")
"""Phases that end a version's rollout (Superseded follows from the next one's Serving)."""
HISTORY_LIMIT = 10
SAME_WITHIN_SECONDS = 60.0
MAX_MESSAGE = 512


def entry(version: str, status: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The entry a status moving to an outcome makes; None for any other phase."""
    phase = status.get("phase")
    if phase not in OUTCOMES:
        return None
    progressing = find_condition(status.get("conditions") or [], "Progressing") or {}
    made: dict[str, Any] = {
        "version": version,
        "outcome": phase,
        "reason": str(progressing.get("reason") or phase),
        "time": rfc3339(now),
    }
    message = str(progressing.get("message") or "")
    if message:
        made["message"] = message if len(message) <= MAX_MESSAGE else message[:509] + "..."
    return made


def merged(
    carried: Iterable[Iterable[Mapping[str, Any]]], new: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The model's history: the entries every version carries and those made now,
    each once, newest first, at most HISTORY_LIMIT."""
    kept: list[dict[str, Any]] = []
    for candidate in sorted(
        (dict(e) for e in [*(e for history in carried for e in history), *new] if _valid(e)),
        key=lambda e: parse_time(e["time"]),
        reverse=True,
    ):
        if not any(_same(candidate, other) for other in kept):
            kept.append(candidate)
    return kept[:HISTORY_LIMIT]


def _same(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    key = ("version", "outcome", "reason")
    if any(one.get(k) != other.get(k) for k in key):
        return False
    apart = abs((parse_time(one["time"]) - parse_time(other["time"])).total_seconds())
    return apart < SAME_WITHIN_SECONDS


def _valid(e: Any) -> bool:
    """An entry as this module writes it (a status edited by hand may hold anything)."""
    if not isinstance(e, Mapping) or e.get("outcome") not in OUTCOMES:
        return False
    if not all(isinstance(e.get(k), str) for k in ("version", "reason", "time")):
        return False
    if len(e["version"]) > 32 or len(e["reason"]) > 128:
        return False  # the API server would refuse the whole status write
    message = e.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > MAX_MESSAGE):
        return False
    try:
        parse_time(e["time"])
    except ValueError:
        return False
    return True
