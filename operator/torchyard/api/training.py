"""TrainingJob: train a model across pods with data, model or gradient parallelism."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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
    "TORCHYARD_ALLOWED_FACTORIES",
    *CODE_LOADING_ENV,
)

_MODEL_NEEDS_TWO_RANKS = Cel(
    rule="self.mode != 'model' || self.replicas * self.procsPerReplica >= 2",
    message="mode model splits layers across ranks and needs replicas * procsPerReplica >= 2",
    field_path=".replicas",
    reason="FieldValueInvalid",
)


class ParallelismSpec(ApiModel, json_schema_extra=cel_rules(_MODEL_NEEDS_TWO_RANKS)):
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

    @model_validator(mode="after")
    def _model_mode_needs_two_ranks(self) -> ParallelismSpec:
        if self.mode == "model" and self.replicas * self.procs_per_replica < 2:
            raise ValueError(f"replicas: {_MODEL_NEEDS_TWO_RANKS.message}")
        return self


class Hyperparameters(ApiModel):
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


class TrainingJobSpec(
    RunPolicy,
    Placement,
    json_schema_extra=cel_rules(_OUTPUT_NOT_MODEL, _OUTPUT_NOT_CHECKPOINTS),
):
    """Desired state of a TrainingJob."""

    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    """Parallelism mode and the number of pods and processes."""
    model: InitialModel
    """The model to train: its architecture and starting weights."""
    dataset: DatasetSource
    """Training data."""
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
    clean_pod_policy: Literal["None", "Running", "All"] = "Running"
    """Which pods to delete when the job ends: None keeps all, Running deletes those still
    running, All deletes every pod (logs are then gone)."""

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
    replica_statuses: list[ReplicaStatus] = Field(default_factory=list, max_length=1024)
    """One entry per replica."""
    progress: TrainingProgress | None = None
    """Live progress."""
    progress_summary: str | None = None
    """Progress as 'step/total', for the printer column."""
    result: ArtifactRef | None = None
    """The trained model, once the job has succeeded."""
