"""ModelVersion: one registered, served and progressively rolled-out version of a model."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from torchyard.api.base import (
    CODE_LOADING_ENV,
    ApiModel,
    Cel,
    ModelUri,
    ResourceRequirements,
    StatusBase,
    Timestamp,
    cel_rules,
)
from torchyard.api.common import ModelFormat, ServiceAccountName, StorageSpec
from torchyard.api.placement import Placement

VERSION_PATTERN = r"^v?[0-9]+(\.[0-9]+){0,2}$"


def _immutable_rule(field: str) -> Cel:
    return Cel(
        rule="self == oldSelf",
        message=f"{field} is immutable: create a new ModelVersion instead",
        reason="FieldValueForbidden",
    )


def _immutable(field: str) -> dict[str, object]:
    return cel_rules(_immutable_rule(field))


MODEL_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_MODEL_NAME = Cel(
    rule=f"self.matches('{MODEL_NAME_PATTERN}')",
    message="must be a DNS-1035 label: lowercase letters, digits and '-', starting with a "
    "letter and ending with a letter or digit (it names the Service <model>-model and the "
    "ModelVersions <model>-v<version>), e.g. digits",
    reason="FieldValueInvalid",
)


def _model_name(value: str) -> str:
    if re.fullmatch(MODEL_NAME_PATTERN, value) is None:
        raise ValueError(_MODEL_NAME.message)
    return value


ModelName = Annotated[str, AfterValidator(_model_name)]
"""A model's name; the field's Field carries the CEL rule (with any other rule of the
field: pydantic keeps only one json_schema_extra per field)."""


class ArtifactSpec(ApiModel):
    """The model artifact this version serves."""

    uri: ModelUri
    """Location of the artifact: file:///path, pvc://CLAIM/path, s3://bucket/key, or
    builtin://all-minilm-l6-v2 (a model the worker image ships)."""
    digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$")
    """sha256:<64 hex>. The serving pod checks it before loading; a mismatch is never served."""
    format: ModelFormat = "torchyard"
    """Format of the artifact; torchyard is the self-describing format the jobs write."""


_ONE_ACTION = Cel(
    rule="!(has(self.setWeight) && has(self.pause))",
    message="a step is either setWeight or pause, not both",
    reason="FieldValueInvalid",
)
_SOME_ACTION = Cel(
    rule="has(self.setWeight) || has(self.pause)",
    message="a step needs setWeight or pause",
    reason="FieldValueRequired",
)


_WATCH_FITS = Cel(
    rule=(
        "!has(self.afterPromotionSeconds) || self.afterPromotionSeconds == 0 || "
        "self.afterPromotionSeconds >= (has(self.failureLimit) ? self.failureLimit : 2) * "
        "(has(self.intervalSeconds) ? self.intervalSeconds : 30)"
    ),
    message=(
        "afterPromotionSeconds must be 0 or at least failureLimit x intervalSeconds: a "
        "shorter watch could never fail failureLimit analyses"
    ),
    field_path=".afterPromotionSeconds",
    reason="FieldValueInvalid",
)


class PauseStep(ApiModel):
    """Hold the current weight."""

    duration_seconds: int | None = Field(default=None, ge=0, le=604800)
    """How long to hold; without it, until spec.promote is set."""


class RolloutStep(ApiModel, json_schema_extra=cel_rules(_ONE_ACTION, _SOME_ACTION)):
    """One step of a progressive rollout."""

    set_weight: int | None = Field(default=None, ge=0, le=100)
    """Percentage of the model's inference requests for this version (exact through the
    model's router; a replica ratio while no router pod is ready, or with routers off)."""
    pause: PauseStep | None = None
    """Hold the current weight, for a while or until promoted."""

    @model_validator(mode="after")
    def _one_action(self) -> RolloutStep:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("a step is exactly one of setWeight or pause")
        return self


TensorDatatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BF16", "BYTES",
]  # fmt: skip
"""The Open Inference Protocol's tensor datatypes."""

_TEXTS_ARE_BYTES = Cel(
    rule="has(self.texts) == (self.datatype == 'BYTES') && has(self.data) != has(self.texts)",
    message="a BYTES input has texts, any other datatype has data (numbers), never both",
    reason="FieldValueInvalid",
)
MAX_REFERENCE_ROWS = 1024
MAX_REFERENCE_VALUES = 65536
MAX_DIMENSIONS = 4
MAX_DIMENSION = 32768
"""Four dimensions of at most 2^15: their product fits CEL's 64-bit integers."""
_PRODUCT = " * ".join(
    f"(size(self.shape) > {i} ? self.shape[{i}] : 1)" for i in range(MAX_DIMENSIONS)
)


def _values_match_shape(field: str) -> Cel:
    return Cel(
        rule=f"!has(self.{field}) || size(self.{field}) == {_PRODUCT}",
        message=f"{field} holds one value per element of shape (the product of its "
        "dimensions), in row-major order",
        field_path=f".{field}",
        reason="FieldValueInvalid",
    )


class ReferenceInput(
    ApiModel,
    json_schema_extra=cel_rules(
        _TEXTS_ARE_BYTES, _values_match_shape("data"), _values_match_shape("texts")
    ),
):
    """One input tensor of the reference request, as in an Open Inference Protocol
    request's `inputs`, with its values in `data` (numbers) or `texts` (BYTES)."""

    name: str = Field(min_length=1, max_length=128)
    """The model's input name, e.g. input-0 (GET /v2/models/<model> lists them)."""
    datatype: TensorDatatype
    """The input's datatype, e.g. FP32, or BYTES for text."""
    shape: list[Annotated[int, Field(ge=1, le=MAX_DIMENSION, description="A dimension.")]] = Field(
        min_length=1, max_length=MAX_DIMENSIONS
    )
    """Its shape; the first dimension is the rows, e.g. [8, 64]."""
    data: list[Annotated[float, Field(description="One value.")]] | None = Field(
        default=None, max_length=MAX_REFERENCE_VALUES
    )
    """The values, flattened in row-major order: one per element of shape."""
    texts: list[Annotated[str, Field(max_length=4096, description="One text.")]] | None = Field(
        default=None, max_length=MAX_REFERENCE_ROWS
    )
    """The strings of a BYTES input, one per element of shape (one per row for [rows])."""

    @model_validator(mode="after")
    def _values_fit(self) -> ReferenceInput:
        if (self.texts is not None) != (self.datatype == "BYTES") or (self.data is None) == (
            self.texts is None
        ):
            raise ValueError(_TEXTS_ARE_BYTES.message)
        field = "texts" if self.texts is not None else "data"
        values = self.texts if self.texts is not None else self.data
        assert values is not None
        if self.data is not None and self.datatype.startswith(("INT", "UINT", "BOOL")):
            allowed = "0 or 1" if self.datatype == "BOOL" else "whole numbers"
            bad = next(
                (
                    v
                    for v in self.data
                    if not math.isfinite(v)
                    or v != int(v)
                    or (self.datatype == "BOOL" and v not in (0, 1))
                ),
                None,
            )
            if bad is not None:
                raise ValueError(f"data: a {self.datatype} input holds {allowed}, not {bad}")
        if len(values) != math.prod(self.shape):
            raise ValueError(
                f"{field}: {_values_match_shape(field).message}: shape {self.shape} needs "
                f"{math.prod(self.shape)}, {len(values)} given"
            )
        return self


QualityMetric = Literal["cosine", "agreement", "accuracy"]
_LABELS_FOR_ACCURACY = Cel(
    rule="has(self.labels) == (self.metric == 'accuracy')",
    message="labels are required with metric accuracy, and only with it",
    field_path=".labels",
    reason="FieldValueInvalid",
)
_SAME_ROWS = Cel(
    rule="self.inputs.all(i, i.shape[0] == self.inputs[0].shape[0])",
    message="every input has the same rows (the first dimension of its shape)",
    field_path=".inputs",
    reason="FieldValueInvalid",
)
_LABEL_PER_ROW = Cel(
    rule="!has(self.labels) || size(self.labels) == self.inputs[0].shape[0]",
    message="labels holds one class per row (the first dimension of the inputs' shape)",
    field_path=".labels",
    reason="FieldValueInvalid",
)


class QualitySpec(
    ApiModel, json_schema_extra=cel_rules(_LABELS_FOR_ACCURACY, _SAME_ROWS, _LABEL_PER_ROW)
):
    """At every analysis the operator sends one reference request to a ready pod of the
    analysed version and, for cosine and agreement, of the version it would replace, and
    compares the answers row by row: a version that answers 200 but answers worse fails."""

    metric: QualityMetric
    """cosine: mean cosine similarity of each row's output with the serving version's
    (embeddings); agreement: share of rows whose top class (argmax) is the serving
    version's (classifiers); accuracy: share of rows whose top class is the row's label."""
    min_score: float = Field(ge=-1.0, le=1.0)
    """The lowest acceptable score, e.g. 0.98 (cosine) or 0.95 (agreement, accuracy)."""
    inputs: list[ReferenceInput] = Field(
        min_length=1,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """The reference request's inputs: rows that stand for the model's real traffic."""
    output: str | None = Field(default=None, min_length=1, max_length=128)
    """The output compared (default: the first the model answers)."""
    labels: list[Annotated[int, Field(ge=0, le=1_000_000, description="A class index.")]] | None = (
        Field(default=None, max_length=MAX_REFERENCE_ROWS)
    )
    """The class of each row (metric accuracy only)."""

    @model_validator(mode="after")
    def _consistent(self) -> QualitySpec:
        if (self.labels is not None) != (self.metric == "accuracy"):
            raise ValueError(f"labels: {_LABELS_FOR_ACCURACY.message}")
        rows = sorted({tensor.shape[0] for tensor in self.inputs})
        if len(rows) > 1:
            raise ValueError(f"inputs: {_SAME_ROWS.message}, not {rows}")
        if self.labels is not None and len(self.labels) != self.rows:
            raise ValueError(
                f"labels: {_LABEL_PER_ROW.message}: {len(self.labels)} for {self.rows}"
            )
        names = [tensor.name for tensor in self.inputs]
        if len(set(names)) < len(names):
            raise ValueError(f"inputs: each input's name is its own, not {names}")
        return self

    @property
    def rows(self) -> int:
        return self.inputs[0].shape[0]


class AnalysisSpec(ApiModel, json_schema_extra=cel_rules(_WATCH_FITS)):
    """Health checks run at every interval while a version rolls out."""

    interval_seconds: int = Field(default=30, ge=1, le=3600)
    """Seconds between two analyses."""
    failure_limit: int = Field(default=2, ge=1, le=100)
    """Failed analyses after which the version is rolled back automatically."""
    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    """Largest acceptable fraction of failed inference requests."""
    max_p99_latency_ms: float | None = Field(default=None, gt=0)
    """Largest acceptable 99th-percentile inference latency in milliseconds."""
    min_request_count: int = Field(default=10, ge=0)
    """Fewer requests than this in an interval make the analysis inconclusive (never a pass)."""
    quality: QualitySpec | None = None
    """Compare the version's answers on a reference request with the serving version's
    (or with labels): a lower score than minScore fails the analysis."""
    after_promotion_seconds: int = Field(default=0, ge=0, le=86400)
    """How long to keep analysing a version after its rollout promoted it: failureLimit
    failed analyses in that time roll it back to the version it replaced (0: no watch;
    else at least failureLimit x intervalSeconds)."""

    @model_validator(mode="after")
    def _watch_fits(self) -> AnalysisSpec:
        needed = self.failure_limit * self.interval_seconds
        if 0 < self.after_promotion_seconds < needed:
            raise ValueError(
                f"afterPromotionSeconds must be 0 or at least failureLimit x intervalSeconds "
                f"({needed}): a shorter watch could never fail failureLimit analyses"
            )
        return self


STICKY_HEADER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$"
SHARED_HEADERS = (
    "host",
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "accept-encoding",
    "connection",
    "te",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
)
"""Headers nearly every request carries, mostly with one value: by them every session
would be one, and all traffic would go to one version."""
_NOT_SHARED = "(?i)^(" + "|".join(SHARED_HEADERS) + ")$"
_STICKY_HEADER = Cel(
    rule=f"self.matches('{STICKY_HEADER_PATTERN}') && !self.matches('(?i)-bin$') "
    f"&& !self.matches('{_NOT_SHARED}')",
    message="must be a header name (letters, digits and '-', at most 63) that names a "
    "session, e.g. X-Session: not a gRPC binary key (ending in -bin), whose value is no "
    f"text to hash, nor one nearly every request carries ({', '.join(SHARED_HEADERS)})",
    reason="FieldValueInvalid",
)


def _sticky_header(value: str) -> str:
    if (
        re.fullmatch(STICKY_HEADER_PATTERN, value) is None
        or value.lower().endswith("-bin")
        or value.lower() in SHARED_HEADERS
    ):
        raise ValueError(_STICKY_HEADER.message)
    return value


class RolloutSpec(ApiModel):
    """How a new version replaces the one serving."""

    steps: list[RolloutStep] = Field(
        default_factory=lambda: [RolloutStep(set_weight=100)], min_length=1, max_length=32
    )
    """Steps in order; passing the last one promotes the version."""
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    """Health analysis during the rollout."""
    sticky_header: Annotated[str, AfterValidator(_sticky_header)] | None = Field(
        default=None, max_length=63, json_schema_extra=cel_rules(_STICKY_HEADER)
    )
    """With the model's router: requests carrying this HTTP header (gRPC metadata key)
    keep to one version while the weights stand, by a hash of its value; a rising weight
    moves sessions only to the new version, a rollback moves them all back. The version
    under rollout sets it (else the serving one). Without the header, or without a
    router, requests are spread by weight."""


class BatchingSpec(ApiModel):
    """Dynamic batching of inference requests."""

    max_batch_size: int = Field(default=16, ge=1, le=4096)
    """Most requests combined into one forward pass."""
    max_queue_delay_ms: float = Field(default=5.0, ge=0.0, le=10_000.0)
    """Longest a request waits for others to fill a batch."""


RESERVED_ENV = (
    "TORCHYARD_SPEC",
    "TORCHYARD_PVC_ROOT",
    "TORCHYARD_PORT",
    "TORCHYARD_GRPC_PORT",
    "TORCHYARD_ALLOWED_FACTORIES",
    *CODE_LOADING_ENV,
)
"""Variables the operator sets on serving pods (a user's value would break them or widen
the administrator's allowed factories), and those that load code from elsewhere."""
_NOT_RESERVED = Cel(
    rule="!(self.name in " + str(list(RESERVED_ENV)) + ")",
    message="name is reserved (the operator sets it on serving pods, or it loads code "
    "from elsewhere): " + ", ".join(RESERVED_ENV) + "; choose another name",
    field_path=".name",
    reason="FieldValueForbidden",
)


class EnvVar(ApiModel, json_schema_extra=cel_rules(_NOT_RESERVED)):
    """An environment variable of the serving container (not for secrets: it is in spec)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)
    """Name of the variable, e.g. OMP_NUM_THREADS."""
    value: str = Field(default="", max_length=4096)
    """Its value."""

    @model_validator(mode="after")
    def _not_reserved(self) -> EnvVar:
        if self.name in RESERVED_ENV:
            raise ValueError(f"name: {_NOT_RESERVED.message}")
        return self


class ServingSpec(Placement):
    """The pods that serve this version."""

    replicas: int = Field(default=1, ge=1, le=1000)
    """Serving pods at full weight."""
    resources: ResourceRequirements | None = None
    """Compute resources of each serving pod."""
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    """Dynamic batching."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Extra environment of the serving container (thread counts, log levels). Changing
    it restarts the version's serving pods."""


_REGISTERED_NAME_FITS = Cel(
    # The ModelVersion is named <model>-v<version> (dots to dashes) and such names are
    # at most 50 characters: its serving Deployment is named after it.
    rule="size(self.model) + size(self.version) <= 48",
    message="model and version together are at most 48 characters: the ModelVersion "
    "is named <model>-v<version>, at most 50",
    field_path=".version",
    reason="FieldValueInvalid",
)


class RegisterAs(ApiModel, json_schema_extra=cel_rules(_REGISTERED_NAME_FITS)):
    """Register the job's result as a ModelVersion when the job succeeds."""

    model: ModelName = Field(min_length=1, max_length=50, json_schema_extra=cel_rules(_MODEL_NAME))
    """Name of the model the version belongs to: a DNS-1035 label (it starts with a
    letter)."""
    version: str = Field(pattern=VERSION_PATTERN, max_length=32)
    """Version to register, e.g. 3 or v1.2.0."""
    serving: ServingSpec | None = None
    """spec.serving of the registered ModelVersion (default: one pod)."""
    rollout: RolloutSpec | None = None
    """spec.rollout of the registered ModelVersion: how it replaces the model's serving
    version (default: straight to 100 % once an analysis at full weight passes). The
    model's first version serves as soon as it is ready, without steps."""

    @model_validator(mode="after")
    def _name_fits(self) -> RegisterAs:
        if len(self.model) + len(self.version) > 48:
            raise ValueError(f"version: {_REGISTERED_NAME_FITS.message}")
        return self


_NOT_BOTH = Cel(
    rule="!(self.promote && self.rollback)",
    message="promote and rollback cannot both be true",
    field_path=".rollback",
    reason="FieldValueInvalid",
)


class ModelVersionSpec(ApiModel, json_schema_extra=cel_rules(_NOT_BOTH)):
    """Desired state of a ModelVersion."""

    model: ModelName = Field(
        min_length=1,
        max_length=50,
        json_schema_extra=cel_rules(_MODEL_NAME, _immutable_rule("model")),
    )
    """Name of the model: a DNS-1035 label (it starts with a letter); every ModelVersion
    with the same model forms its history. Immutable."""
    version: str = Field(
        pattern=VERSION_PATTERN, max_length=32, json_schema_extra=_immutable("version")
    )
    """Version, e.g. 3 or v1.2.0; compared number by number. Immutable."""
    artifact: ArtifactSpec = Field(json_schema_extra=_immutable("artifact"))
    """The artifact this version serves. Immutable."""
    serving: ServingSpec = Field(default_factory=ServingSpec)
    """Serving pods."""
    storage: StorageSpec | None = None
    """Object storage settings for this object's s3:// URIs: endpoint, region and the
    Secret with the credentials."""
    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the pods run as (default: the namespace's default), e.g. one bound
    to a cloud role (EKS IRSA, GKE workload identity) so that its credentials reach the
    pods when storage.s3.credentialsSecret is not set."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    """Progressive rollout and analysis."""
    paused: bool = False
    """Hold the rollout at its current step."""
    promote: bool = False
    """Skip the remaining steps and analysis: this version serves at full weight."""
    rollback: bool = False
    """Roll back now: traffic returns at once to the previous good version, no steps."""

    @model_validator(mode="after")
    def _not_promote_and_rollback(self) -> ModelVersionSpec:
        if self.promote and self.rollback:
            raise ValueError(f"rollback: {_NOT_BOTH.message}")
        return self


def version_key(version: str) -> tuple[int, ...]:
    """Order of versions: number by number, so that 1.10 comes after 1.9."""
    parts = tuple(int(part) for part in version.lstrip("v").split("."))
    return parts + (0,) * (3 - len(parts))


class QualityResult(ApiModel):
    """How the analysed version answered the reference request (spec.rollout.analysis.quality)."""

    metric: QualityMetric
    """cosine, agreement or accuracy."""
    score: float = Field(ge=-1.0, le=1.0)
    """Its score: the mean cosine, or the share of rows that agree (or are right)."""
    min_score: float = Field(ge=-1.0, le=1.0)
    """The lowest acceptable score (from the spec)."""
    rows: int = Field(ge=0)
    """Rows compared."""
    lowest_row: float | None = Field(default=None, ge=-1.0, le=1.0)
    """The lowest cosine of one row (metric cosine)."""


class AnalysisResult(ApiModel):
    """The latest health analysis."""

    time: Timestamp | None = None
    """When it ran."""
    verdict: Literal["Pass", "Fail", "Inconclusive"] | None = None
    """Pass, Fail, or Inconclusive (too few requests: never counted as a pass)."""
    requests: int | None = Field(default=None, ge=0)
    """Requests in the interval."""
    error_rate: float | None = Field(default=None, ge=0)
    """Fraction of failed requests."""
    p99_latency_ms: float | None = Field(default=None, ge=0)
    """99th-percentile latency."""
    quality: QualityResult | None = None
    """The quality comparison's figures, when spec.rollout.analysis.quality is set and
    the comparison could be made."""
    failures: int | None = Field(default=None, ge=0)
    """Failed analyses so far in this rollout."""
    message: str | None = Field(default=None, max_length=2048)
    """Why: the figures against the thresholds, or what made it inconclusive (too few
    requests, metrics that could not be read or trusted)."""


class RolloutRecord(ApiModel):
    """How one version's rollout ended."""

    version: str = Field(max_length=32)
    """The version, e.g. 3."""
    outcome: Literal["Serving", "RolledBack", "Failed"]
    """Serving (promoted, the model's first, or restored), RolledBack or Failed."""
    reason: str = Field(max_length=128)
    """Why, as its Progressing condition said: Promoted, AnalysisFailed,
    QualityRegression, ManualRollback, DigestMismatch..."""
    time: Timestamp
    """When."""
    message: str | None = Field(default=None, max_length=512)
    """The condition's message then: the figures of a failed analysis, say."""


ModelVersionPhase = Literal[
    "Pending", "Progressing", "Serving", "Paused", "Superseded", "RolledBack", "Failed"
]


class ModelVersionStatus(StatusBase):
    """Observed state of a ModelVersion."""

    phase: ModelVersionPhase | None = None
    """Pending, Progressing, Serving, Paused, Superseded, RolledBack or Failed."""
    current_step: int | None = Field(default=None, ge=0)
    """Index of the rollout step in progress."""
    step_start_time: Timestamp | None = None
    """When the current step's weight was first really served (timed pauses count from it)."""
    weight: int | None = Field(default=None, ge=0, le=100)
    """Share of the model's inference requests this version served, in percent, since the
    routing weights last changed (counted by the model's router); desiredWeight until
    enough requests were answered, or while no router is ready."""
    desired_weight: int | None = Field(default=None, ge=0, le=100)
    """Share of the model's traffic wanted for this version now, in percent: what the
    model's router is told."""
    ready_replicas: int | None = Field(default=None, ge=0)
    """Serving pods that answer inference requests."""
    desired_replicas: int | None = Field(default=None, ge=0)
    """Serving pods wanted at the current weight."""
    analysis: AnalysisResult | None = None
    """Latest health analysis."""
    stable_version: str | None = None
    """The model's version that serves when no rollout is under way."""
    previous_version: str | None = None
    """The version this one replaces (the rollback target)."""
    watched_until: Timestamp | None = None
    """End of the watch after promotion (spec.rollout.analysis.afterPromotionSeconds):
    until then the promoted version is analysed and rolled back if it regresses."""
    url: str | None = None
    """In-cluster URL of the model's inference endpoint (Open Inference Protocol v2)."""
    history: list[RolloutRecord] | None = Field(default=None, max_length=10)
    """The model's rollouts, newest first (at most 10): which version ended how, why and
    when. Every version of the model carries the same history, so it outlives the
    versions it names."""
