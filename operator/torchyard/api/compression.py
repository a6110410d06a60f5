"""CompressionJob: make a model smaller or faster, and prove it still works."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from torchyard.api.base import (
    ApiModel,
    Cel,
    ResourceRequirements,
    RunPolicy,
    cel_rules,
    overlap_rule,
    overlaps,
)
from torchyard.api.common import (
    ArtifactRef,
    DatasetSource,
    JobStatusBase,
    ModelSource,
    OutputSpec,
    ServiceAccountName,
    StorageSpec,
)
from torchyard.api.modelversion import RegisterAs
from torchyard.api.placement import Placement

Method = Literal["prune", "quantize", "distill"]
METHODS: tuple[Method, ...] = ("prune", "quantize", "distill")


class PruneSpec(ApiModel):
    """Pruning: remove the least important weights."""

    kind: Literal["unstructured", "structured"] = "unstructured"
    """unstructured zeroes single weights by magnitude (masks made permanent);
    structured physically removes whole channels, heads or neurons so the model
    really becomes smaller and faster."""
    sparsity: float = Field(gt=0.0, lt=1.0)
    """Fraction of weights (unstructured) or of units (structured) to remove, in (0, 1)."""
    scope: Literal["layer", "global"] = "global"
    """unstructured only: rank weights per layer or across the whole model."""
    target: Literal["neurons", "channels", "heads"] = "neurons"
    """structured only: which units to remove."""
    fine_tune_steps: int = Field(default=0, ge=0, le=1_000_000)
    """Optimizer steps on the evaluation dataset's train split after pruning (0: none)."""


_CALIBRATION_REQUIRED = Cel(
    rule="self.mode != 'static' || has(self.calibration)",
    message="calibration is required when mode is static "
    "(static quantization measures activation ranges on sample data)",
    field_path=".calibration",
    reason="FieldValueRequired",
)


class QuantizeSearch(ApiModel):
    """Try quantization configurations until one passes the quality gate.

    Candidates go from the fastest to the most faithful: no smoothing, SmoothQuant
    smoothing at rising strengths, then the layers that lose most computed one step more
    faithfully (static -> dynamic -> bf16 where the CPU has it, else float; their weights
    stay int8, so the model stays as small). Each is judged on the quarter of the sample
    data it was not fitted on; the first that passes spec.evaluation's maxDrop (and
    minCosine) is kept."""

    max_trials: int = Field(default=8, ge=1, le=64)
    """Configurations to try at most."""
    time_budget_seconds: int = Field(default=900, ge=10, le=86_400)
    """No trial starts when it would end after this many seconds of searching."""


_SEARCH_MODES = Cel(
    rule="!has(self.search) || self.mode == 'dynamic' || self.mode == 'static'",
    message="search applies to modes dynamic and static (weight_only, fp16 and bf16 have "
    "nothing to search): remove search or change mode",
    field_path=".search",
    reason="FieldValueForbidden",
)


class QuantizeSpec(ApiModel, json_schema_extra=cel_rules(_CALIBRATION_REQUIRED, _SEARCH_MODES)):
    """Quantization: store and compute with fewer bits."""

    mode: Literal["dynamic", "weight_only", "static", "fp16", "bf16"] = "dynamic"
    """dynamic: int8 weights, activations quantized on the fly (Linear, LSTM);
    weight_only: int8 weights including embeddings; static: int8 weights and activations
    with ranges from a calibration set; fp16/bf16: a cast of the floating-point weights."""
    granularity: Literal["per_channel", "per_tensor"] = "per_channel"
    """Scale per output channel (higher fidelity) or one per tensor."""
    calibration: DatasetSource | None = None
    """Samples that static quantization observes to choose activation ranges (and that
    smoothing and the search fit on; default: evaluation.dataset's train split)."""
    search: QuantizeSearch | None = None
    """Search for the fastest configuration that passes the quality gate (needs
    spec.evaluation); without it one configuration is built."""

    @model_validator(mode="after")
    def _static_needs_calibration(self) -> QuantizeSpec:
        if self.mode == "static" and self.calibration is None:
            raise ValueError(f"calibration: {_CALIBRATION_REQUIRED.message}")
        if self.search is not None and self.mode not in ("dynamic", "static"):
            raise ValueError(f"search: {_SEARCH_MODES.message}")
        return self


class StudentRule(ApiModel):
    """Derive the student from the teacher by shrinking it."""

    layer_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    """Fraction of the teacher's layers (transformer blocks or hidden layers) to keep."""
    width_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    """Fraction of the teacher's hidden width to keep."""


_ONE_STUDENT = Cel(
    rule="has(self.student) != has(self.studentRule)",
    message="set exactly one of student (a model source) or studentRule (shrink the teacher)",
    reason="FieldValueInvalid",
)


class DistillSpec(ApiModel, json_schema_extra=cel_rules(_ONE_STUDENT)):
    """Knowledge distillation: train a smaller student to imitate the teacher."""

    student: ModelSource | None = None
    """The student's own (untrained or pre-trained) model."""
    student_rule: StudentRule | None = None
    """Build the student from the teacher with fewer layers or less width."""
    dataset: DatasetSource
    """Transfer set the student learns from (labels are used when present)."""
    temperature: float = Field(default=4.0, gt=0.0, le=100.0)
    """Softmax temperature of the distillation loss."""
    alpha: float = Field(default=0.7, ge=0.0, le=1.0)
    """Weight of the soft-target loss; 1 - alpha weighs the hard-label loss."""
    epochs: int = Field(default=10, ge=1, le=10_000)
    """Passes over the transfer set."""
    learning_rate: float = Field(default=1e-3, gt=0.0, le=10.0)
    """Optimizer learning rate."""

    @model_validator(mode="after")
    def _exactly_one_student(self) -> DistillSpec:
        if (self.student is None) == (self.student_rule is None):
            raise ValueError(_ONE_STUDENT.message)
        return self


_MIN_COSINE_METRIC = Cel(
    rule="!has(self.minCosine) || self.metric == 'cosine'",
    message="minCosine applies to metric cosine: remove it or set metric: cosine",
    field_path=".minCosine",
    reason="FieldValueForbidden",
)


class EvaluationSpec(ApiModel, json_schema_extra=cel_rules(_MIN_COSINE_METRIC)):
    """How quality is measured before and after, and how much loss is acceptable."""

    dataset: DatasetSource
    """Data to evaluate on (use split: test)."""
    metric: Literal["accuracy", "cosine"] = "accuracy"
    """accuracy for classifiers; cosine: mean cosine similarity of outputs (embeddings)
    against the original model, for models without labels."""
    max_drop: float = Field(default=0.01, ge=0.0, le=1.0)
    """Largest acceptable drop of the metric (absolute, 0.01 = one point). A larger drop
    fails the job with QualityGateFailed and publishes no artifact."""
    min_cosine: float | None = Field(default=None, ge=-1.0, le=1.0)
    """metric cosine only: every sample's cosine to the original model must reach this
    (a mean can hide a few ruined samples); below it the job fails QualityGateFailed."""

    @model_validator(mode="after")
    def _min_cosine_needs_cosine(self) -> EvaluationSpec:
        if self.min_cosine is not None and self.metric != "cosine":
            raise ValueError(f"minCosine: {_MIN_COSINE_METRIC.message}")
        return self


def _method_block_rules() -> list[Cel]:
    rules = []
    for method in METHODS:
        rules.append(
            Cel(
                rule=f"self.method != '{method}' || has(self.{method})",
                message=f"{method} is required when method is {method}",
                field_path=f".{method}",
                reason="FieldValueRequired",
            )
        )
        rules.append(
            Cel(
                rule=f"!has(self.{method}) || self.method == '{method}'",
                message=f"{method} is set but method is not {method}: remove it or change method",
                field_path=f".{method}",
                reason="FieldValueForbidden",
            )
        )
    return rules


_METHOD_RULES = _method_block_rules()
_SEARCH_NEEDS_GATE = Cel(
    rule="!has(self.quantize) || !has(self.quantize.search) || has(self.evaluation)",
    message="quantize.search needs evaluation: the search keeps the first configuration "
    "that passes evaluation.maxDrop",
    field_path=".evaluation",
    reason="FieldValueRequired",
)
_SEARCH_HELD_OUT = Cel(
    rule="!has(self.quantize) || !has(self.quantize.search) || has(self.quantize.calibration) "
    "|| !has(self.evaluation) || (self.evaluation.dataset.uri.startsWith('builtin://') "
    "&& has(self.evaluation.dataset.split) && self.evaluation.dataset.split == 'test')",
    message="quantize.search fits and judges its candidates on quantize.calibration, else on "
    "the train split of a builtin evaluation.dataset whose split is test; set "
    "quantize.calibration, so that the search never chooses on the data the gate judges",
    field_path=".quantize.calibration",
    reason="FieldValueRequired",
)
_OUTPUT_DIFFERS = Cel(
    rule=overlap_rule("self.output.uri", "self.model.uri"),
    message="output.uri must differ from model.uri, and neither may lie inside the other: "
    "a job never overwrites its input",
    field_path=".output.uri",
    reason="FieldValueInvalid",
)
_OUTPUT_NOT_STUDENT = Cel(
    rule="!has(self.distill) || !has(self.distill.student) || "
    + overlap_rule("self.output.uri", "self.distill.student.uri"),
    message="output.uri must differ from distill.student.uri, and neither may lie inside "
    "the other: a job never overwrites its input",
    field_path=".output.uri",
    reason="FieldValueInvalid",
)


class CompressionJobSpec(
    RunPolicy,
    Placement,
    json_schema_extra=cel_rules(
        *_METHOD_RULES,
        _SEARCH_NEEDS_GATE,
        _SEARCH_HELD_OUT,
        _OUTPUT_DIFFERS,
        _OUTPUT_NOT_STUDENT,
    ),
):
    """Desired state of a CompressionJob."""

    model: ModelSource
    """The model to compress (the teacher, for distill)."""
    method: Method
    """prune, quantize or distill; the block of the same name configures it."""
    prune: PruneSpec | None = None
    """Settings for method prune."""
    quantize: QuantizeSpec | None = None
    """Settings for method quantize."""
    distill: DistillSpec | None = None
    """Settings for method distill."""
    evaluation: EvaluationSpec | None = None
    """Quality measurement and gate; without it only size and latency are reported."""
    output: OutputSpec
    """Where the compressed model is written."""
    register_as: RegisterAs | None = None
    """Register the result as a ModelVersion when the job succeeds."""
    resources: ResourceRequirements | None = None
    """Compute resources of the compression pod."""
    storage: StorageSpec | None = None
    """Object storage settings for this object's s3:// URIs: endpoint, region and the
    Secret with the credentials."""
    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the pods run as (default: the namespace's default), e.g. one bound
    to a cloud role (EKS IRSA, GKE workload identity) so that its credentials reach the
    pods when storage.s3.credentialsSecret is not set."""

    @model_validator(mode="after")
    def _method_block_present(self) -> CompressionJobSpec:
        for method in METHODS:
            block = getattr(self, method)
            if method == self.method and block is None:
                raise ValueError(f"{method}: {method} is required when method is {method}")
            if method != self.method and block is not None:
                raise ValueError(
                    f"{method}: {method} is set but method is not {method}: "
                    "remove it or change method"
                )
        if self.quantize and self.quantize.search and self.evaluation is None:
            raise ValueError(f"evaluation: {_SEARCH_NEEDS_GATE.message}")
        if self.quantize and self.quantize.search and self.quantize.calibration is None:
            assert self.evaluation is not None
            dataset = self.evaluation.dataset
            if not (dataset.uri.startswith("builtin://") and dataset.split == "test"):
                raise ValueError(f"quantize.calibration: {_SEARCH_HELD_OUT.message}")
        if overlaps(self.output.uri, self.model.uri):
            raise ValueError(f"output.uri: {_OUTPUT_DIFFERS.message}")
        student = self.distill.student if self.distill else None
        if student is not None and overlaps(self.output.uri, student.uri):
            raise ValueError(f"output.uri: {_OUTPUT_NOT_STUDENT.message}")
        return self


class Figures(ApiModel):
    """Measurements of one model."""

    parameters: int | None = Field(default=None, ge=0)
    """Number of parameters (non-zero ones for pruned models are in sparsity)."""
    bytes: int | None = Field(default=None, ge=0)
    """Size of the serialised model in bytes."""
    latency_ms: float | None = Field(default=None, ge=0)
    """Median latency of one evaluation batch on the pod's CPUs, in milliseconds."""
    metric: float | None = None
    """Value of the evaluation metric."""
    sparsity: float | None = Field(default=None, ge=0, le=1)
    """Fraction of weights that are zero."""


class MeasuredOn(ApiModel):
    """The data and the machine the figures come from."""

    dataset: str | None = Field(default=None, max_length=512)
    """URI and split of the evaluation data the metric and minCosine come from."""
    samples: int | None = Field(default=None, ge=0)
    """Samples the metric was computed over."""
    latency_batch: str | None = Field(default=None, max_length=64)
    """Shape of the batch latency was timed on, e.g. "32 x 41 tokens"."""
    threads: int | None = Field(default=None, ge=0)
    """CPU threads the model ran with."""
    cpu: str | None = Field(default=None, max_length=256)
    """What the CPU offers the kernels: vector ISA, int8 (VNNI) and bf16 support."""


class SearchSummary(ApiModel):
    """What the accuracy-aware search tried (every trial's figures are in the manifest)."""

    trials: int | None = Field(default=None, ge=0)
    """Configurations tried."""
    chosen: str | None = Field(default=None, max_length=256)
    """The configuration published."""
    reason: str | None = Field(default=None, max_length=256)
    """Why the search stopped there."""


class CompressionResult(ApiModel):
    """What the job produced and measured."""

    artifact: ArtifactRef | None = None
    """The compressed model (absent when the quality gate refused it)."""
    before: Figures | None = None
    """Figures of the original model."""
    after: Figures | None = None
    """Figures of the compressed model."""
    compression_ratio: float | None = Field(default=None, ge=0)
    """before.bytes / after.bytes."""
    speedup: float | None = Field(default=None, ge=0)
    """before.latencyMs / after.latencyMs."""
    metric_drop: float | None = None
    """before.metric - after.metric."""
    min_cosine: float | None = None
    """metric cosine: the lowest cosine of any one sample to the original model."""
    measured_on: MeasuredOn | None = None
    """The data and the machine the figures come from."""
    search: SearchSummary | None = None
    """quantize.search: what was tried and what was kept."""


JobPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class CompressionJobStatus(JobStatusBase):
    """Observed state of a CompressionJob."""

    phase: JobPhase | None = None
    """Pending, Running, Succeeded or Failed."""
    result: CompressionResult | None = None
    """Artifact and figures, once the job has succeeded (figures also on QualityGateFailed)."""
