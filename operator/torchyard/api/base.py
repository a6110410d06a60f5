"""Building blocks shared by every torchyard API type.

Every field name is camelCase on the wire (the Kubernetes convention) and snake_case in
Python. Field docstrings become the descriptions that `kubectl explain` shows, so each
field carries one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints
from pydantic.alias_generators import to_camel

GROUP = "torchyard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Base of every API object: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_assignment=True,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class Cel:
    """A CEL rule the API server enforces (x-kubernetes-validations).

    The same rule is enforced again in Python by a validator next to it, so the
    operator and the workloads refuse what the API server would refuse.
    """

    rule: str
    message: str
    field_path: str | None = None
    reason: Literal["FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden"] | None = None

    def render(self) -> dict[str, str]:
        rendered = {"rule": self.rule, "message": self.message}
        if self.field_path:
            rendered["fieldPath"] = self.field_path
        if self.reason:
            rendered["reason"] = self.reason
        return rendered


def cel_rules(*rules: Cel) -> dict[str, Any]:
    """json_schema_extra for a model or field that carries CEL rules."""
    return {"x-kubernetes-validations": [rule.render() for rule in rules]}


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]
"""A point in time, serialised as RFC 3339 in UTC with whole seconds (like metav1.Time)."""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# URIs of model artifacts and datasets. `pvc://CLAIM/PATH` is a path inside a
# PersistentVolumeClaim that the operator mounts; `file://` is a path the pod sees.
ARTIFACT_URI_PATTERN = (
    r"^(file:///|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/).*$"
)
ArtifactUri = Annotated[
    str, StringConstraints(pattern=ARTIFACT_URI_PATTERN, min_length=8, max_length=2048)
]

BUILTIN_MODELS = ("all-minilm-l6-v2",)
"""Models the worker image ships (a read-only URI: builtin://NAME)."""
MODEL_URI_PATTERN = (
    r"^(builtin://(" + "|".join(BUILTIN_MODELS) + r")$"
    r"|file:///|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/).*$"
)
ModelUri = Annotated[
    str, StringConstraints(pattern=MODEL_URI_PATTERN, min_length=8, max_length=2048)
]
"""Where a model is read from: an artifact URI, or builtin://NAME for a model the worker
image ships."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]
"""A Kubernetes resource quantity such as `500m`, `2`, or `4Gi`."""


def is_quantity(value: str | int) -> bool:
    return isinstance(value, int) or re.fullmatch(QUANTITY_PATTERN, value) is not None


class ResourceRequirements(ApiModel):
    """Compute resources of a pod's main container, as in a Pod spec."""

    requests: dict[str, Quantity] | None = Field(default=None, max_length=8)
    """Minimum resources the scheduler reserves, e.g. `{cpu: "1", memory: 2Gi}`."""
    limits: dict[str, Quantity] | None = Field(default=None, max_length=8)
    """Maximum resources the container may use, e.g. `{memory: 4Gi, nvidia.com/gpu: 1}`."""


class RunPolicy(ApiModel):
    """Retries, deadline and clean-up of a job; job specs inherit these fields."""

    backoff_limit: int = Field(default=3, ge=0, le=100)
    """Retries after a transient failure before the job is marked Failed. A permanent
    error (bad input, quality gate) fails at once."""
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    """Seconds the job may run, retries included, before it fails with DeadlineExceeded."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    """Seconds after the job finishes before the operator deletes it and its pods."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """One aspect of the object's state, per the Kubernetes API conventions."""

    type: str = Field(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        max_length=316,
    )
    """Type of condition in CamelCase, e.g. Ready or Succeeded."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", min_length=1, max_length=1024
    )
    """Machine-readable CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details: what happened and what to change."""
    last_transition_time: Timestamp
    """When the status last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the condition was computed from."""


class StatusBase(ApiModel):
    """Fields every torchyard status has."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation the operator last acted on."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Latest observations of the object's state."""
    message: str | None = Field(default=None, max_length=4096)
    """A one-line human summary of the current phase."""
