"""The acceptance step every kind shares: validate the spec, record it in status, post Events."""

from __future__ import annotations

import kopf

from torchyard.admission import Decision, admit
from torchyard.api.base import now
from torchyard.api.kinds import Kind


def accept(kind: Kind, body: kopf.Body, patch: kopf.Patch) -> Decision:
    spec = dict(body.get("spec") or {})
    status = dict(body.get("status") or {})
    decision = admit(kind, spec, status, body.meta["generation"], now())
    apply(decision, body, patch)
    return decision


def apply(decision: Decision, body: kopf.Body, patch: kopf.Patch) -> None:
    """Status goes through the status subresource (kopf routes patch.status there)."""
    patch.status.update(decision.status_patch)
    for event in decision.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
