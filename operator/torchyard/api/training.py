"""TrainingJob: train a model across pods with data, model or gradient parallelism."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from torchyard.api.base import (
    CODE_LOADING_ENV,
    ApiModel,
    Cel,
    ModelUri,
    Quantity,
    ResourceRequirements,
    RunPolicy,
    Timestamp,
    cel_rules,
    overlap_rule,
    overlaps,
    quantity_value,
    uri_type,
)
from torchyard.api.common import (
    FACTORY_RULES,
    FORMATS_NEEDING_FACTORY,
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

ParallelismMode = Literal["data", "model", "gradient"]

# Set by the operator in every training pod; a user env var of the same name would
# silently break the rendezvous (or widen the administrator's allowed factories), so it
# is refused instead.
RESERVED_ENV = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "GROUP_RANK",
    "NPROC_PER_NODE",
    "PET_NNODES",
    "PET_NPROC_PER_NODE",
    "PET_NODE_RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
    "TORCHYARD_SPEC",
    "TORCHYARD_JOB",
    "TORCHYARD_JOB_UID",
    "TORCHYARD_NODE_ADDR",
    "TORCHYARD_ALLOWED_FACTORIES",
    *CODE_LOADING_ENV,
)

_MODEL_NEEDS_TWO_RANKS = Cel(
    rule="self.mode != 'model' || self.replicas * self.procsPerReplica >= 2",
    message="mode model splits layers across ranks and needs replicas * procsPerReplica >= 2",
    field_path=".replicas",
    reason="FieldValueInvalid",
)


ModulePath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_]+([.][A-Za-z0-9_]+)*$", max_length=256),
    Field(description="A submodule's dotted name, e.g. encoder.layer.3."),
]
_SPLIT_POINTS_IN_MODEL_MODE = Cel(
    rule="!has(self.splitPoints) || size(self.splitPoints) == 0 || self.mode == 'model'",
    message="splitPoints applies to mode model, which cuts the model there into stages",
    field_path=".splitPoints",
    reason="FieldValueForbidden",
)
_STAGE_PER_RANK = Cel(
    rule="!has(self.splitPoints) || size(self.splitPoints) == 0 || "
    "size(self.splitPoints) + 1 == self.replicas * self.procsPerReplica",
    message="splitPoints cuts the model into one stage more than it names, one stage per "
    "rank: replicas * procsPerReplica must be the number of split points + 1",
    field_path=".splitPoints",
    reason="FieldValueInvalid",
)


class ParallelismSpec(
    ApiModel,
    json_schema_extra=cel_rules(
        _MODEL_NEEDS_TWO_RANKS, _SPLIT_POINTS_IN_MODEL_MODE, _STAGE_PER_RANK
    ),
):
    """How the training is spread over pods and processes."""

    mode: ParallelismMode = "data"
    """data: DistributedDataParallel (full replica per rank); model: layers split across
    ranks as pipeline stages; gradient: gradients and optimizer state sharded across ranks,
    parameters replicated (ZeRO stage 2)."""
    replicas: int = Field(default=1, ge=1, le=1024)
    """Number of pods."""
    procs_per_replica: int = Field(default=1, ge=1, le=64)
    """Processes (ranks) per pod, e.g. one per GPU."""
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """torch.distributed backend; auto picks nccl when the replica's processes see a
    GPU (normally because resources request one, e.g. nvidia.com/gpu), else gloo."""

    split_points: list[ModulePath] = Field(
        default_factory=list, max_length=63, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Mode model: where to cut the model into pipeline stages, one stage per rank, each
    cut before the named submodule (for a text task, named as in the Hugging Face
    encoder, e.g. encoder.layer.3). The model is traced (torch.distributed.pipelining),
    so any traceable model splits, not only an nn.Sequential. Empty: an nn.Sequential's
    layers balanced by parameter count."""

    @model_validator(mode="after")
    def _model_mode_needs_two_ranks(self) -> ParallelismSpec:
        if self.mode == "model" and self.replicas * self.procs_per_replica < 2:
            raise ValueError(f"replicas: {_MODEL_NEEDS_TWO_RANKS.message}")
        if self.split_points and self.mode != "model":
            raise ValueError(f"splitPoints: {_SPLIT_POINTS_IN_MODEL_MODE.message}")
        if (
            self.split_points
            and len(self.split_points) + 1 != self.replicas * self.procs_per_replica
        ):
            raise ValueError(f"splitPoints: {_STAGE_PER_RANK.message}")
        if len(set(self.split_points)) != len(self.split_points):
            raise ValueError("splitPoints: each split point is named once")
        return self


_ACCUMULATION_FITS_BATCH = Cel(
    rule="!has(self.globalBatchSize) || !has(self.gradientAccumulationSteps) || "
    "self.globalBatchSize >= self.gradientAccumulationSteps",
    message="globalBatchSize must be at least gradientAccumulationSteps: each accumulation "
    "step computes part of the global batch",
    field_path=".gradientAccumulationSteps",
    reason="FieldValueInvalid",
)


class Hyperparameters(ApiModel, json_schema_extra=cel_rules(_ACCUMULATION_FITS_BATCH)):
    """Optimisation settings. The global batch size holds whatever the world size."""

    epochs: int = Field(default=1, ge=1, le=100_000)
    """Passes over the training set."""
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimizer steps, whatever epochs says."""
    global_batch_size: int = Field(default=64, ge=1, le=1_048_576)
    """Samples per optimizer step summed over all ranks."""
    learning_rate: float = Field(default=1e-3, gt=0.0, le=10.0)
    """Learning rate of the optimizer."""
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    """Optimizer."""
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)
    """Weight decay."""
    seed: int = Field(default=0, ge=0)
    """Seed for initialisation and data order; a resumed job continues the same order."""
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024)
    """Each rank computes its share of the global batch in this many forward and
    backward passes before the optimizer step: the same step in less activation memory."""
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    """fp32; bf16: forward passes under bf16 autocast (weights, gradients and optimizer
    stay fp32); auto: bf16 where it trains faster (a GPU with bf16, a CPU with AMX),
    else fp32, the same on every rank. The artifact's manifest records which ran."""

    @model_validator(mode="after")
    def _accumulation_fits_batch(self) -> Hyperparameters:
        if self.global_batch_size < self.gradient_accumulation_steps:
            raise ValueError(f"gradientAccumulationSteps: {_ACCUMULATION_FITS_BATCH.message}")
        return self


RecordField = Annotated[str, StringConstraints(min_length=1, max_length=128)]
LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=128), Field(description="A class name.")
]
TaskType = Literal["classification", "regression", "embedding"]

_PAIR_FOR_EMBEDDING = Cel(
    rule="self.type != 'embedding' || has(self.pairField)",
    message="pairField is required for type embedding: the field that holds each text's "
    "partner (e.g. its title), which the encoder learns to place next to it",
    field_path=".pairField",
    reason="FieldValueRequired",
)
_LABELS_FOR_CLASSIFICATION = Cel(
    rule="self.type == 'classification' || !has(self.labels) || size(self.labels) == 0",
    message="labels names the classes of type classification; regression reads a number "
    "and embedding reads no label",
    field_path=".labels",
    reason="FieldValueForbidden",
)
_TWO_LABELS = Cel(
    rule="!has(self.labels) || size(self.labels) != 1",
    message="labels needs at least two classes (or none: the classes found in the data)",
    field_path=".labels",
    reason="FieldValueInvalid",
)
_EMBEDDING_TRAINS_ENCODER = Cel(
    rule="self.type != 'embedding' || !has(self.freezeEncoder) || !self.freezeEncoder",
    message="freezeEncoder leaves nothing to train for type embedding, which has no head",
    field_path=".freezeEncoder",
    reason="FieldValueInvalid",
)
TASK_RULES = (
    _PAIR_FOR_EMBEDDING,
    _LABELS_FOR_CLASSIFICATION,
    _TWO_LABELS,
    _EMBEDDING_TRAINS_ENCODER,
)


class TextTask(ApiModel, json_schema_extra=cel_rules(*TASK_RULES)):
    """Fine-tune a text encoder (a Hugging Face model, e.g. builtin://all-minilm-l6-v2)
    on records of text: the workload tokenizes them, mean-pools the encoder's output
    and trains a head for the task."""

    type: TaskType
    """classification: a class per text (cross-entropy; a linear head); regression: a
    number per text (mean squared error; a linear head); embedding: texts and their
    partners (pairField) pulled together and apart from the other texts of the batch
    (contrastive, in-batch negatives: the other texts of the rank's accumulation step;
    the encoder's embeddings are the output)."""
    text_field: RecordField = "text"
    """The record field (JSON key or CSV column) with the text."""
    pair_field: RecordField | None = None
    """Type embedding: the field with each text's partner, e.g. a title or a question."""
    label_field: RecordField = "label"
    """Types classification and regression: the field with the class or the number."""
    labels: list[LabelName] = Field(
        default_factory=list, max_length=1000, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Type classification: the class names, in the order of the model's outputs (a
    label not in the list fails the job). Empty: the distinct labels of the training
    data, sorted (numerically when they are all integers)."""
    max_length: int = Field(default=128, ge=8, le=512)
    """Tokens per text; longer texts are truncated."""
    freeze_encoder: bool = False
    """Train only the head, the encoder's weights fixed: a linear probe, the baseline
    that fine-tuning is measured against."""

    @model_validator(mode="after")
    def _fields_fit_type(self) -> TextTask:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels: each class is named once")
        for rule, broken in (
            (_PAIR_FOR_EMBEDDING, self.type == "embedding" and self.pair_field is None),
            (_LABELS_FOR_CLASSIFICATION, self.type != "classification" and bool(self.labels)),
            (_TWO_LABELS, len(self.labels) == 1),
            (_EMBEDDING_TRAINS_ENCODER, self.type == "embedding" and self.freeze_encoder),
        ):
            if broken:
                assert rule.field_path is not None
                raise ValueError(f"{rule.field_path[1:]}: {rule.message}")
        return self


_FORMAT_ONLY_FOR_FILES = Cel(
    rule="!has(self.format) || self.format == 'auto' || !self.uri.startsWith('builtin://')",
    message="format applies to files of records (.jsonl, .csv); a builtin:// dataset has its own",
    field_path=".format",
    reason="FieldValueForbidden",
)


class TrainingDataset(DatasetSource, json_schema_extra=cel_rules(_FORMAT_ONLY_FOR_FILES)):
    """Training or evaluation data: a builtin set, a file of tensors, or (with a task)
    a JSON Lines or CSV file of records that each rank reads its own samples from."""

    format: Literal["auto", "jsonl", "csv"] = "auto"
    """How to read a file of records: auto goes by its extension (.jsonl, .json, .csv;
    anything else is a file of tensors)."""
    loader_workers: int = Field(default=0, ge=0, le=16)
    """DataLoader worker processes per rank that read and tokenize ahead of the step
    (they share batches through /dev/shm); 0 reads in the training process."""

    @model_validator(mode="after")
    def _format_fits_uri(self) -> TrainingDataset:
        if self.format != "auto" and self.uri.startswith("builtin://"):
            raise ValueError(f"format: {_FORMAT_ONLY_FOR_FILES.message}")
        return self


class EarlyStopping(ApiModel):
    """Stop before the last epoch when the evaluation metric stops improving."""

    patience: int = Field(default=2, ge=1, le=1000)
    """Epochs in a row without an improvement larger than minDelta before stopping."""
    min_delta: float = Field(default=0.0, ge=0.0, le=1e6)
    """Smallest change of the metric that counts as an improvement."""


class TrainingEvaluationSpec(ApiModel):
    """A held-out set evaluated after every epoch; its metrics go to status.evaluation."""

    dataset: TrainingDataset
    """The evaluation data, in the training data's form (e.g. split test of a builtin
    set, or another file of records)."""
    batch_size: int = Field(default=64, ge=1, le=4096)
    """Samples per evaluation batch (the ranks share the batches)."""
    early_stopping: EarlyStopping | None = None
    """Stop when the metric (accuracy; mse for regression, lower is better) has not
    improved for `patience` epochs; the model of the last epoch is published."""


CheckpointUri = uri_type(r"^(file:///|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/|s3://).+$")


class CheckpointSpec(ApiModel):
    """Periodic checkpoints, from which a restarted job resumes."""

    uri: CheckpointUri
    """Directory that receives checkpoints (written atomically)."""
    interval_steps: int = Field(default=100, ge=1)
    """Optimizer steps between checkpoints."""


class EnvVar(ApiModel):
    """An environment variable for the training processes."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)
    """Variable name; names the operator sets (MASTER_ADDR, RANK, WORLD_SIZE, ...) are refused."""
    value: str = Field(default="", max_length=32768)
    """Value."""


_RESERVED_LIST = "[" + ", ".join(f"'{name}'" for name in RESERVED_ENV) + "]"
_NO_RESERVED_ENV = Cel(
    rule=f"self.all(e, !(e.name in {_RESERVED_LIST}))",
    message="env must not set a variable the operator sets, or one that loads code from "
    "elsewhere: " + ", ".join(RESERVED_ENV),
    reason="FieldValueForbidden",
)


_RECOVERY_IS_FIXED = Cel(
    rule="self == oldSelf",
    message="recovery cannot change once the job exists: its running pods meet at the "
    "rendezvous it chose; delete and re-create the job to change it",
    reason="FieldValueForbidden",
)


_SHM_AT_LEAST_1MI = Cel(
    rule="!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('1Mi')) >= 0",
    message="shmSize must be at least 1Mi, e.g. 1Gi",
    reason="FieldValueInvalid",
)


_URI_OR_FACTORY = Cel(
    rule="has(self.uri) || self.format in ['safetensors', 'state_dict']",
    message="uri is required unless the model is trained from scratch (format "
    "state_dict or safetensors with a factory and no uri)",
    field_path=".uri",
    reason="FieldValueRequired",
)


class InitialModel(ModelSource, json_schema_extra=cel_rules(*FACTORY_RULES, _URI_OR_FACTORY)):
    """The model a TrainingJob starts from: weights at a URI, or a factory's fresh ones."""

    uri: ModelUri | None = None  # type: ignore[assignment]
    """Location of the starting weights: file:///path, pvc://CLAIM/path, s3://bucket/key
    or builtin://NAME; another job's spec.output.uri makes this job wait for that job.
    Without uri (format state_dict or safetensors, with a factory) training starts from
    the factory's initial weights, drawn with hyperparameters.seed."""

    @model_validator(mode="after")
    def _uri_or_factory(self) -> InitialModel:
        if self.uri is None and self.format not in FORMATS_NEEDING_FACTORY:
            raise ValueError(f"uri: {_URI_OR_FACTORY.message}")
        return self


_OUTPUT_NOT_MODEL = Cel(
    rule="!has(self.model.uri) || " + overlap_rule("self.output.uri", "self.model.uri"),
    message="output.uri must differ from model.uri, and neither may lie inside the other: "
    "a job never overwrites its input",
    field_path=".output.uri",
    reason="FieldValueInvalid",
)
_OUTPUT_NOT_CHECKPOINTS = Cel(
    rule="!has(self.checkpoint) || " + overlap_rule("self.output.uri", "self.checkpoint.uri"),
    message="output.uri must differ from checkpoint.uri, and neither may lie inside the "
    "other: publishing the model would replace the checkpoints",
    field_path=".output.uri",
    reason="FieldValueInvalid",
)


_TEXT_IN_MODEL_MODE = Cel(
    rule="!has(self.task) || !has(self.parallelism) || self.parallelism.mode != 'model' || "
    "(has(self.parallelism.splitPoints) && size(self.parallelism.splitPoints) > 0 && "
    "self.task.type != 'embedding')",
    message="a text task in mode model needs parallelism.splitPoints (e.g. "
    "['encoder.layer.3']) and type classification or regression (embedding contrasts "
    "whole batches, which a pipeline's microbatches are not)",
    field_path=".parallelism.splitPoints",
    reason="FieldValueInvalid",
)
_NO_EVALUATION_IN_MODEL_MODE = Cel(
    rule="!has(self.evaluation) || !has(self.parallelism) || self.parallelism.mode != 'model'",
    message="evaluation runs in mode data or gradient (every rank holds the whole model); "
    "mode model holds one stage per rank",
    field_path=".evaluation",
    reason="FieldValueInvalid",
)


class TrainingJobSpec(
    RunPolicy,
    Placement,
    json_schema_extra=cel_rules(
        _OUTPUT_NOT_MODEL,
        _OUTPUT_NOT_CHECKPOINTS,
        _TEXT_IN_MODEL_MODE,
        _NO_EVALUATION_IN_MODEL_MODE,
    ),
):
    """Desired state of a TrainingJob."""

    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    """Parallelism mode and the number of pods and processes."""
    model: InitialModel
    """The model to train: its architecture and starting weights."""
    task: TextTask | None = None
    """A text task (classification, regression or embedding) on records of text. Without
    it, the model classifies the dataset's feature tensors by their labels."""
    dataset: TrainingDataset
    """Training data."""
    evaluation: TrainingEvaluationSpec | None = None
    """A held-out set evaluated after every epoch, with an optional early stop."""
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    """Optimisation settings."""
    checkpoint: CheckpointSpec | None = None
    """Where and how often to checkpoint; without it a restart begins at step 0."""
    output: OutputSpec
    """Where the trained model is written."""
    register_as: RegisterAs | None = None
    """Register the trained model as a ModelVersion when the job succeeds."""
    resources: ResourceRequirements | None = None
    """Compute resources of each replica."""
    shm_size: Quantity = Field(default="1Gi", json_schema_extra=cel_rules(_SHM_AT_LEAST_1MI))
    """Size of each replica's memory-backed /dev/shm, where NCCL and DataLoader workers
    share tensors (a container runtime's default is 64Mi). What is written there counts
    against the replica's memory limit."""
    storage: StorageSpec | None = None
    """Object storage settings for this object's s3:// URIs: endpoint, region and the
    Secret with the credentials."""
    service_account_name: ServiceAccountName | None = None
    """ServiceAccount the pods run as (default: the namespace's default), e.g. one bound
    to a cloud role (EKS IRSA, GKE workload identity) so that its credentials reach the
    pods when storage.s3.credentialsSecret is not set."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            **cel_rules(_NO_RESERVED_ENV),
        },
    )
    """Extra environment variables for the training processes."""
    suspend: bool = False
    """True removes the pods and keeps the job; false again resumes from the last checkpoint."""
    recovery: Literal["gang", "inPlace"] = Field(
        default="gang", json_schema_extra=cel_rules(_RECOVERY_IS_FIXED)
    )
    """What a failed replica restarts. gang: every pod is replaced and the job resumes
    from the last checkpoint. inPlace: the other replicas stay up and wait at torch's
    elastic (c10d) rendezvous while the failed pod alone is recreated (a failed worker
    process is restarted inside its pod), then every rank resumes from the last
    checkpoint; replica 0 hosts the rendezvous, so its failure is still a gang restart,
    as is any failure of a job in a Kueue queue. Both count against backoffLimit. Cannot
    change once the job exists."""
    clean_pod_policy: Literal["None", "Running", "All"] = "Running"
    """Which pods to delete when the job ends: None keeps all, Running deletes those still
    running, All deletes every pod (logs are then gone)."""

    @model_validator(mode="after")
    def _mode_fits_the_work(self) -> TrainingJobSpec:
        if self.parallelism.mode == "model":
            if self.task is not None and (
                not self.parallelism.split_points or self.task.type == "embedding"
            ):
                raise ValueError(f"parallelism.splitPoints: {_TEXT_IN_MODEL_MODE.message}")
            if self.evaluation is not None:
                raise ValueError(f"evaluation: {_NO_EVALUATION_IN_MODEL_MODE.message}")
        return self

    @model_validator(mode="after")
    def _shm_size_is_usable(self) -> TrainingJobSpec:
        if quantity_value(self.shm_size) < 1024 * 1024:
            raise ValueError(f"shmSize: {_SHM_AT_LEAST_1MI.message}")
        return self

    @model_validator(mode="after")
    def _no_reserved_env(self) -> TrainingJobSpec:
        clashing = sorted({e.name for e in self.env} & set(RESERVED_ENV))
        if clashing:
            raise ValueError(f"env: {', '.join(clashing)}: {_NO_RESERVED_ENV.message}")
        return self

    @model_validator(mode="after")
    def _output_is_its_own_place(self) -> TrainingJobSpec:
        if self.model.uri is not None and overlaps(self.output.uri, self.model.uri):
            raise ValueError(f"output.uri: {_OUTPUT_NOT_MODEL.message}")
        if self.checkpoint is not None and overlaps(self.output.uri, self.checkpoint.uri):
            raise ValueError(f"output.uri: {_OUTPUT_NOT_CHECKPOINTS.message}")
        return self


class ReplicaStatus(ApiModel):
    """State of one replica's pod."""

    index: int = Field(ge=0)
    """Replica index (node rank)."""
    pod: str | None = None
    """Name of the current pod."""
    phase: str | None = None
    """Phase of the pod."""


class TrainingProgress(ApiModel):
    """Live progress read from replica 0."""

    step: int | None = Field(default=None, ge=0)
    """Optimizer steps done."""
    total_steps: int | None = Field(default=None, ge=0)
    """Optimizer steps planned."""
    epoch: int | None = Field(default=None, ge=0)
    """Current epoch."""
    loss: float | None = None
    """Training loss of the latest step."""
    samples_per_second: float | None = Field(default=None, ge=0)
    """Throughput over all ranks (at the end: over the whole attempt)."""
    resumed_from_step: int | None = Field(default=None, ge=0)
    """At the end: the step of the checkpoint the last attempt resumed from (0: it ran
    from the start)."""
    update_time: Timestamp | None = None
    """When this progress was reported."""


# The largest count a status figure may hold: beyond it a float is no longer exact, and
# the API server's int64 would overflow soon after (a pod writes these).
_MAX_COUNT = 2**53
MetricName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), Field(description="A metric's name.")
]


class EpochEvaluation(ApiModel):
    """The evaluation set's metrics after one epoch."""

    epoch: int = Field(ge=1, le=_MAX_COUNT)
    """The epoch just finished (1-based)."""
    step: int = Field(ge=0, le=_MAX_COUNT)
    """Optimizer steps done at that point."""
    metrics: dict[MetricName, float] = Field(default_factory=dict, max_length=8)
    """accuracy and loss (classification), mse and mae (regression), accuracy (the
    share of texts whose nearest partner among the partners of their evaluation batch
    is their own) and meanCosine (embedding)."""


class TrainingEvaluation(ApiModel):
    """How the model did on the evaluation set, epoch by epoch."""

    metric: str | None = Field(default=None, max_length=64)
    """The metric that decides the best epoch and the early stop."""
    history: list[EpochEvaluation] = Field(default_factory=list, max_length=100)
    """One entry per epoch (the last 100)."""
    best_epoch: int | None = Field(default=None, ge=1, le=_MAX_COUNT)
    """The epoch with the best metric so far."""
    stopped_early: bool | None = None
    """True when earlyStopping ended training before the last epoch."""


PodUid = Annotated[str, StringConstraints(max_length=64), Field(description="A pod's uid.")]


TrainingPhase = Literal["Pending", "Running", "Restarting", "Suspended", "Succeeded", "Failed"]


class TrainingJobStatus(JobStatusBase):
    """Observed state of a TrainingJob."""

    phase: TrainingPhase | None = None
    """Pending, Running, Restarting, Suspended, Succeeded or Failed."""
    restarts: int | None = Field(default=None, ge=0)
    """Gang restarts so far after a replica failed (all pods replaced, resumed from the
    last checkpoint); at most backoffLimit."""
    disruptions: int | None = Field(default=None, ge=0)
    """Gang restarts after the cluster stopped a replica (preemption, eviction, a node
    drain, Kueue): not counted against backoffLimit."""
    recoveries: int | None = Field(default=None, ge=0)
    """recovery inPlace: failed replicas recreated alone while the others waited (one
    per failure seen together); counted against backoffLimit with restarts."""
    recovered_pods: list[PodUid] = Field(default_factory=list, max_length=1024)
    """recovery inPlace: the uids of the failed pods the last recovery counted, so that
    none is counted again while it is being deleted."""
    replica_statuses: list[ReplicaStatus] = Field(default_factory=list, max_length=1024)
    """One entry per replica."""
    progress: TrainingProgress | None = None
    """Live progress."""
    progress_summary: str | None = None
    """Progress as 'step/total', for the printer column."""
    evaluation: TrainingEvaluation | None = None
    """Metrics on the evaluation set after each epoch, and the early stop."""
    result: ArtifactRef | None = None
    """The trained model, once the job has succeeded."""
