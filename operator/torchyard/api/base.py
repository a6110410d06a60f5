"""Building blocks shared by every torchyard API type.

Every field name is camelCase on the wire (the Kubernetes convention) and snake_case in
Python. Field docstrings become the descriptions that `kubectl explain` shows, so each
field carries one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)
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


def rfc3339(value: datetime) -> str:
    """A time as the API stores it (metav1.Time): RFC 3339, UTC, whole seconds."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str, when_used="json")]
"""A point in time, serialised as RFC 3339 in UTC with whole seconds (like metav1.Time)."""


def parse_time(text: str) -> datetime:
    """An RFC 3339 time from the API (a `Z` or an offset), as an aware datetime in UTC;
    ValueError when it is not one."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# URIs of model artifacts and datasets. `pvc://CLAIM/PATH` is a path inside a
# PersistentVolumeClaim that the operator mounts; `file://` is a path the pod sees.
ARTIFACT_URI_PATTERN = (
    r"^(file:///|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/).*$"
)

# Every URI is refused unless it is in normal form, so that two URIs name the same
# place exactly when they are equal (the lineage index, "output differs from model")
# and no path climbs out of its claim. No backslashes: each pattern is a Python regex
# and a CEL string literal, searched anywhere in the value (CEL's matches()).
NOT_NORMAL_URI = r"^[a-z0-9]+://[^/]*/(.*/)?([.][.]?)?(/|$)|[?#]"
NOT_NORMAL_MESSAGE = (
    "must be a URI in normal form: no '..' or '.' segment, no empty segment ('//'), no "
    "trailing '/' and no '?' or '#', so that two URIs name the same place only when they "
    "are equal: write pvc://models/a, not pvc://models/./a/"
)
DENIED_FILE_URI = r"^file:///(proc|sys|dev)(/|$)|^file:///(.*/)?torchyard/local(/|$)"
DENIED_FILE_MESSAGE = (
    "must not point into /proc, /sys or /dev, nor into a torchyard/local directory (the "
    "state of the local cluster: its control plane, certificates and node agent): use a "
    "directory of your data or a pvc:// claim"
)
URI_RULES = (
    Cel(rule=f"!self.matches('{NOT_NORMAL_URI}')", message=NOT_NORMAL_MESSAGE),
    Cel(rule=f"!self.matches('{DENIED_FILE_URI}')", message=DENIED_FILE_MESSAGE),
)


def uri_problem(uri: str) -> str | None:
    """What is wrong with a URI that matches its field's pattern (the URI_RULES), or None."""
    if re.search(NOT_NORMAL_URI, uri):
        return NOT_NORMAL_MESSAGE
    if re.search(DENIED_FILE_URI, uri):
        return DENIED_FILE_MESSAGE
    return None


def _check_uri(uri: str) -> str:
    problem = uri_problem(uri)
    if problem:
        raise ValueError(problem)
    return uri


def uri_type(pattern: str, min_length: int = 1) -> Any:
    """A URI field: its scheme pattern, and the URI_RULES checked by the API server (CEL)
    and again by a validator with the same messages."""
    return Annotated[
        str,
        StringConstraints(pattern=pattern, min_length=min_length, max_length=2048),
        Field(json_schema_extra=cel_rules(*URI_RULES)),
        AfterValidator(_check_uri),
    ]


def overlaps(first: str, second: str) -> bool:
    """Whether two normal-form URIs are one place or one lies inside the other."""
    return first == second or first.startswith(second + "/") or second.startswith(first + "/")


def overlap_rule(first: str, second: str) -> str:
    """CEL for `not overlaps(first, second)`, the expressions being CEL strings."""
    return (
        f"({first} != {second} && !{first}.startsWith({second} + '/') "
        f"&& !{second}.startsWith({first} + '/'))"
    )


ArtifactUri = uri_type(ARTIFACT_URI_PATTERN, min_length=8)

BUILTIN_MODELS = ("all-minilm-l6-v2",)
"""Models the worker image ships (a read-only URI: builtin://NAME)."""
MODEL_URI_PATTERN = (
    r"^(builtin://(" + "|".join(BUILTIN_MODELS) + r")$"
    r"|file:///|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/).*$"
)
ModelUri = uri_type(MODEL_URI_PATTERN, min_length=8)
"""Where a model is read from: an artifact URI, or builtin://NAME for a model the worker
image ships."""

CODE_LOADING_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PYTHONPLATLIBDIR",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
)
"""Variables that make the interpreter or the loader run code from elsewhere: set in a
spec's env they would get around the allowed factories, so they are refused."""

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=64)]
"""A Kubernetes resource quantity such as `500m`, `2`, or `4Gi`."""

_SUFFIXES = {
    **{f"{prefix}i": Fraction(1024) ** power for power, prefix in enumerate("KMGTPE", 1)},
    **{prefix: Fraction(1000) ** power for power, prefix in enumerate("kMGTPE", 1)},
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
}


def quantity_value(value: str | int) -> Fraction:
    """The exact value of a quantity (`500m` is 1/2, `1Ki` is 1024), as the API server's
    CEL `quantity()` compares them."""
    if isinstance(value, int):
        return Fraction(value)
    if re.fullmatch(QUANTITY_PATTERN, value) is None:
        raise ValueError(f"{value!r} is not a quantity")
    number = re.match(r"^[-+]?[0-9.]+", value)
    assert number is not None
    rest = value[number.end() :]
    if rest[:1] in ("e", "E"):
        return Fraction(number.group()) * Fraction(10) ** int(rest[1:])
    return Fraction(number.group()) * _SUFFIXES.get(rest, Fraction(1))


def _as_quantity(value: str) -> str:
    """CEL: a map value (int or string) as quantity() takes it."""
    return f"quantity(string({value}))"


_NOT_NEGATIVE = Cel(
    rule="self.all(k, !isQuantity(string(self[k])) || "
    + _as_quantity("self[k]")
    + ".compareTo(quantity('0')) >= 0)",
    message="quantities must not be negative",
    reason="FieldValueInvalid",
)
_LIMITS_COVER_REQUESTS = Cel(
    rule="!has(self.requests) || !has(self.limits) || self.limits.all(k, !(k in self.requests) "
    "|| !isQuantity(string(self.limits[k])) || !isQuantity(string(self.requests[k])) || "
    + _as_quantity("self.limits[k]")
    + ".compareTo("
    + _as_quantity("self.requests[k]")
    + ") >= 0)",
    message="every limit must be at least the request of the same resource (a pod whose "
    "limits.memory is below its requests.memory is refused): raise the limit or lower the "
    "request",
    field_path=".limits",
    reason="FieldValueInvalid",
)


def _quantities(rule: Cel) -> Any:
    return Field(default=None, max_length=8, json_schema_extra=cel_rules(rule))


class ResourceRequirements(ApiModel, json_schema_extra=cel_rules(_LIMITS_COVER_REQUESTS)):
    """Compute resources of a pod's main container, as in a Pod spec."""

    requests: dict[str, Quantity] | None = _quantities(_NOT_NEGATIVE)
    """Minimum resources the scheduler reserves, e.g. `{cpu: "1", memory: 2Gi}`."""
    limits: dict[str, Quantity] | None = _quantities(_NOT_NEGATIVE)
    """Maximum resources the container may use, e.g. `{memory: 4Gi, nvidia.com/gpu: 1}`;
    each at least its request."""

    @model_validator(mode="after")
    def _quantities_make_sense(self) -> ResourceRequirements:
        for field in ("requests", "limits"):
            values = getattr(self, field) or {}
            if any(quantity_value(value) < 0 for value in values.values()):
                raise ValueError(f"{field}: {_NOT_NEGATIVE.message}")
        requests = self.requests or {}
        for name, limit in (self.limits or {}).items():
            if name in requests and quantity_value(limit) < quantity_value(requests[name]):
                raise ValueError(f"limits: {_LIMITS_COVER_REQUESTS.message}")
        return self


MAX_SECONDS = 366 * 24 * 3600
"""The largest duration a job field takes (a year and a day): far beyond any real job, and
far below what overflows date arithmetic (year 9999)."""


class RunPolicy(ApiModel):
    """Retries, deadline and clean-up of a job; job specs inherit these fields."""

    backoff_limit: int = Field(default=3, ge=0, le=100)
    """Retries after a transient failure before the job is marked Failed. A permanent
    error (bad input, quality gate) fails at once."""
    active_deadline_seconds: int | None = Field(default=None, ge=1, le=MAX_SECONDS)
    """Seconds the job may run, retries included, before it fails with DeadlineExceeded
    (at most 31622400, a year and a day)."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=MAX_SECONDS)
    """Seconds after the job finishes before the operator deletes it and its pods (at
    most 31622400, a year and a day)."""


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
