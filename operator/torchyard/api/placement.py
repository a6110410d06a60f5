"""Where a job's or a version's pods may run: nodeSelector, tolerations, affinity and
priorityClassName, as in a Pod spec (and at the same level as KServe's predictor).

They reach every pod the object starts unchanged; the scheduler is the judge. A GPU node
pool is usually tainted (`nvidia.com/gpu:NoSchedule`) and labelled, so a job that asks
for GPUs also needs a toleration and a selector to land there.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from torchyard.api.base import ApiModel, Cel, cel_rules
from torchyard.api.common import DNS_SUBDOMAIN_PATTERN

# A qualified name as Kubernetes checks label keys: an optional DNS-subdomain prefix and
# a name of at most 63 characters.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# A toleration's key may be empty (with operator Exists: every taint), as in a Pod spec.
TaintKey = Annotated[str, StringConstraints(pattern=f"^$|{LABEL_KEY_PATTERN}", max_length=317)]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN, max_length=63)]

_EXISTS_HAS_NO_VALUE = Cel(
    rule="!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
    message="a toleration with operator Exists matches any value: leave value out",
    field_path=".value",
    reason="FieldValueInvalid",
)
_NO_KEY_MEANS_EXISTS = Cel(
    rule="(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
    message="a toleration without key tolerates every taint and needs operator Exists",
    field_path=".operator",
    reason="FieldValueRequired",
)
_SECONDS_ONLY_FOR_NO_EXECUTE = Cel(
    rule="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
    message="tolerationSeconds applies to effect NoExecute only",
    field_path=".tolerationSeconds",
    reason="FieldValueInvalid",
)


class Toleration(
    ApiModel,
    json_schema_extra=cel_rules(
        _EXISTS_HAS_NO_VALUE, _NO_KEY_MEANS_EXISTS, _SECONDS_ONLY_FOR_NO_EXECUTE
    ),
):
    """A taint the pods tolerate, as in a Pod spec."""

    key: TaintKey | None = None
    """Taint key, e.g. nvidia.com/gpu; without it (and operator Exists) every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """Equal (the default) matches key and value; Exists matches the key whatever its value."""
    value: LabelValue | None = None
    """Taint value, with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; empty tolerates every effect."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """With NoExecute: how long the pods stay on a node after the taint appears."""

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError(f"value: {_EXISTS_HAS_NO_VALUE.message}")
        if not self.key and self.operator != "Exists":
            raise ValueError(f"operator: {_NO_KEY_MEANS_EXISTS.message}")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError(f"tolerationSeconds: {_SECONDS_ONLY_FOR_NO_EXECUTE.message}")
        return self


def _free_form(description: str) -> Any:
    """A Pod-spec affinity term kept as written: the API server validates it when the
    pods are created, and a refusal shows in the object's status."""
    return Field(
        default=None,
        description=description,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class Affinity(ApiModel):
    """Scheduling affinity, exactly as a Pod spec's `affinity`."""

    node_affinity: dict[str, Any] | None = _free_form(
        "Node affinity, e.g. requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms."
    )
    pod_affinity: dict[str, Any] | None = _free_form("Pod affinity (co-locate with pods).")
    pod_anti_affinity: dict[str, Any] | None = _free_form(
        "Pod anti-affinity (spread away from pods), e.g. one replica per node."
    )

    def to_pod(self) -> dict[str, Any]:
        """The Pod spec's affinity: the terms given, as written."""
        terms = {
            "nodeAffinity": self.node_affinity,
            "podAffinity": self.pod_affinity,
            "podAntiAffinity": self.pod_anti_affinity,
        }
        return {key: term for key, term in terms.items() if term is not None}


_LABEL_KEYS = Cel(
    # A structural schema has no patternProperties: the keys are checked here.
    rule="self.all(k, size(k) <= 317 && k.indexOf('/') <= 253 && "
    f"k.matches(r'{LABEL_KEY_PATTERN}'))",
    message="nodeSelector keys must be label keys: an optional DNS-subdomain prefix (at "
    "most 253 characters) and '/', then a name of at most 63 letters, digits, '-', '_' "
    "or '.'",
    reason="FieldValueInvalid",
)


class Placement(ApiModel):
    """Pod placement fields; specs that start pods inherit them."""

    node_selector: dict[str, LabelValue] | None = Field(
        default=None, json_schema_extra={"maxProperties": 64, **cel_rules(_LABEL_KEYS)}
    )
    """Node labels the pods require, e.g. `{nvidia.com/gpu.present: "true"}`."""
    tolerations: list[Toleration] | None = Field(default=None, max_length=64)
    """Taints the pods tolerate, e.g. a GPU pool's `nvidia.com/gpu:NoSchedule`."""
    affinity: Affinity | None = None
    """Node and pod affinity, as in a Pod spec."""
    priority_class_name: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253
    )
    """PriorityClass of the pods (it must exist): higher ones are scheduled first and may
    preempt lower ones."""

    @model_validator(mode="after")
    def _label_keys(self) -> Placement:
        for key in self.node_selector or {}:
            prefix = key.split("/")[0] if "/" in key else ""
            too_long = len(key) > 317 or len(prefix) > 253
            if too_long or re.fullmatch(LABEL_KEY_PATTERN, key) is None:
                raise ValueError(f"nodeSelector: {key!r}: {_LABEL_KEYS.message}")
        return self

    def pod_fields(self) -> dict[str, Any]:
        """The Pod spec fields these settings become (only those set)."""
        fields: dict[str, Any] = {
            "nodeSelector": dict(self.node_selector or {}),
            "tolerations": [toleration.to_k8s() for toleration in self.tolerations or []],
            "affinity": self.affinity.to_pod() if self.affinity else {},
            "priorityClassName": self.priority_class_name,
        }
        return {key: value for key, value in fields.items() if value}
