"""Types shared by several kinds: where models and data come from, where results go."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from torchyard.api.base import (
    ApiModel,
    ArtifactUri,
    Cel,
    ModelUri,
    StatusBase,
    Timestamp,
    cel_rules,
    uri_type,
)

ModelFormat = Literal["huggingface", "torchscript", "safetensors", "state_dict", "torchyard"]

FACTORY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
Factory = Annotated[str, StringConstraints(pattern=FACTORY_PATTERN, max_length=256)]

FORMATS_NEEDING_FACTORY = ("safetensors", "state_dict")

_FACTORY_REQUIRED = Cel(
    rule="!(self.format in ['safetensors', 'state_dict']) || has(self.factory)",
    message="factory is required when format is safetensors or state_dict "
    "(give 'module:function' that builds the model the weights belong to)",
    field_path=".factory",
    reason="FieldValueRequired",
)
_FACTORY_FORBIDDEN = Cel(
    rule="!has(self.factory) || self.format in ['safetensors', 'state_dict']",
    message="factory applies only to format safetensors or state_dict; "
    "huggingface, torchscript and torchyard artifacts describe their own architecture",
    field_path=".factory",
    reason="FieldValueForbidden",
)


FACTORY_RULES = (_FACTORY_REQUIRED, _FACTORY_FORBIDDEN)


class ModelSource(ApiModel, json_schema_extra=cel_rules(*FACTORY_RULES)):
    """Where a model is read from and how it is stored."""

    uri: ModelUri
    """Location of the model: file:///path, pvc://CLAIM/path, s3://bucket/key, or
    builtin://all-minilm-l6-v2 (the sentence encoder the worker image ships; format
    huggingface). A URI that another job in the namespace writes (its spec.output.uri)
    makes this job wait for that job to succeed, and read what it wrote."""
    format: ModelFormat
    """huggingface (a transformers directory with safetensors weights), torchscript
    (a scripted or traced module), safetensors or state_dict (weights only; see factory),
    torchyard (a directory a TrainingJob or CompressionJob wrote; it describes itself)."""
    factory: Factory | None = None
    """For weights-only formats: 'module:function' returning the untrained nn.Module the
    weights load into, importable in the worker image."""
    digest: str | None = Field(default=None, pattern=r"^sha256:[a-f0-9]{64}$")
    """Optional sha256 digest of the artifact; a mismatch fails the job before any work."""

    @model_validator(mode="after")
    def _factory_matches_format(self) -> ModelSource:
        if self.format in FORMATS_NEEDING_FACTORY and self.factory is None:
            raise ValueError(f"factory: {_FACTORY_REQUIRED.message}")
        if self.format not in FORMATS_NEEDING_FACTORY and self.factory is not None:
            raise ValueError(f"factory: {_FACTORY_FORBIDDEN.message}")
        return self


BUILTIN_DATASETS = (
    "digits",
    "breast_cancer",
    "wine",
    "iris",
    "sentences",
    "varied-text",
    "reviews",
)

DATASET_URI_PATTERN = (
    r"^(builtin://(" + "|".join(BUILTIN_DATASETS) + r")"
    r"|file:///.+|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/.+|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/.+)$"
)
DatasetUri = uri_type(DATASET_URI_PATTERN)


class DatasetSource(ApiModel):
    """A dataset: one bundled with the worker image, or files at a URI."""

    uri: DatasetUri
    """builtin://NAME for a dataset that ships with the worker image (digits, breast_cancer,
    wine, iris: scikit-learn's bundled sets; sentences: a small English text corpus;
    varied-text: code, logs, chat, long paragraphs, German and Spanish, for held-out
    checks of text encoders; reviews: 640 short reviews with a star rating and a title,
    a labelled text task), or file:///, pvc://CLAIM/ or s3:// for a .pt/.safetensors
    file of tensors, or (a TrainingJob with a task) a .jsonl or .csv file of records."""
    split: Literal["train", "test", "all"] = "train"
    """Which split to use; bundled sets are split 80/20 with a fixed seed."""
    max_samples: int | None = Field(default=None, ge=1)
    """Use at most this many samples (a quick run, or a calibration subset)."""


class OutputSpec(ApiModel):
    """Where the job writes its resulting model."""

    uri: ArtifactUri
    """Destination of the artifact: file:///path, pvc://CLAIM/path or s3://bucket/key.
    The write is atomic and a sha256 digest is recorded next to it. Published artifacts
    are immutable: a job whose output.uri already holds an artifact that another job (or
    a person) wrote fails with OutputExists, unless overwrite is true."""
    overwrite: bool = False
    """Replace an artifact already at uri. ModelVersions pinned to the old artifact's
    digest then refuse to serve it (DigestMismatch): prefer a new uri per version. A
    job's own retries never need it (the artifact records the job that wrote it)."""


class ArtifactRef(ApiModel):
    """An artifact that a job wrote."""

    uri: str
    """Where the artifact is."""
    digest: str | None = None
    """sha256:<hex> of the artifact's content."""
    bytes: int | None = Field(default=None, ge=0)
    """Size of the artifact in bytes."""
    format: str | None = None
    """Format the artifact was written in."""


class InputRef(ApiModel):
    """The model a job started from: where it came from and which job produced it."""

    uri: str | None = None
    """Where the model was read (absent for a model built by its factory)."""
    factory: str | None = None
    """The factory that built the model, for weights-only formats and models trained
    from scratch."""
    digest: str | None = None
    """sha256:<hex> of the content the job read."""
    produced_by: str | None = None
    """Kind/name of the job in this namespace whose output the model is, e.g.
    TrainingJob/digits: the lineage of the artifact."""


# No backslashes: the same text is a Python regex and a CEL string literal.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENDPOINT_PATTERN = r"^https?://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[!-~]*)?$"


def _checked(pattern: str, message: str, max_length: int) -> Any:
    """A string checked twice with one message: by a CEL rule on the field (the API
    server) and by a validator (the operator and the workloads)."""
    rule = Cel(rule=f"self.matches('{pattern}')", message=message, reason="FieldValueInvalid")

    def check(value: str) -> str:
        if re.fullmatch(pattern, value) is None:
            raise ValueError(message)
        return value

    return Annotated[
        str,
        Field(min_length=1, max_length=max_length, json_schema_extra=cel_rules(rule)),
        AfterValidator(check),
    ]


def _object_name(field: str, kind: str) -> Any:
    return _checked(
        DNS_SUBDOMAIN_PATTERN,
        f"{field} must be the name of a {kind} in the object's namespace: a DNS-1123 "
        "subdomain (lowercase letters, digits, '-' and '.', starting and ending with a "
        "letter or digit)",
        253,
    )


SecretName = _object_name("credentialsSecret", "Secret")
ServiceAccountName = _object_name("serviceAccountName", "ServiceAccount")
Endpoint = _checked(
    ENDPOINT_PATTERN,
    "endpoint must be the http:// or https:// URL of an S3 API, e.g. http://minio.storage:9000",
    2048,
)


class S3Storage(ApiModel):
    """How the pods reach s3:// URIs: the endpoint, the region and the credentials."""

    endpoint: Endpoint | None = None
    """URL of an S3-compatible store (MinIO, SeaweedFS, Ceph RGW), e.g.
    http://minio.storage:9000; without it, AWS S3. The pods get it as
    TORCHYARD_S3_ENDPOINT."""
    region: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$", max_length=64
    )
    """Region of the bucket, e.g. us-east-1; the pods get it as AWS_REGION and
    AWS_DEFAULT_REGION."""
    credentials_secret: SecretName | None = None
    """A Secret in the object's namespace with the keys AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN optional). The pods read them through
    secretKeyRef; they never appear in the spec, status, Events or logs. Without it,
    credentials come from the pods' ServiceAccount (IRSA, workload identity: see
    serviceAccountName) or the node."""


class StorageSpec(ApiModel):
    """Access to object storage for the URIs of this object."""

    s3: S3Storage | None = None
    """Endpoint, region and credentials for every s3:// URI of this object (model,
    datasets, output, checkpoints, served artifact)."""


class JobStatusBase(StatusBase):
    """Status fields every batch job (CompressionJob, TrainingJob) has."""

    start_time: Timestamp | None = None
    """When the first pod of the job was created."""
    completion_time: Timestamp | None = None
    """When the job reached Succeeded or Failed."""
    attempts: int | None = Field(default=None, ge=0)
    """How many times the job's pods have been started."""
    input: InputRef | None = None
    """The model the job read, and which job produced it."""
