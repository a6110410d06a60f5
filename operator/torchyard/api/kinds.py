"""The three custom resources: names, schemas and how `kubectl get` shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torchyard.api.base import ApiModel, Cel, StatusBase
from torchyard.api.compression import CompressionJobSpec, CompressionJobStatus
from torchyard.api.modelversion import ModelVersionSpec, ModelVersionStatus
from torchyard.api.training import TrainingJobSpec, TrainingJobStatus

CATEGORY = "torchyard"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0

    def render(self) -> dict[str, object]:
        column: dict[str, object] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
        }
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


PHASE = PrinterColumn("Phase", ".status.phase", description="Phase of the object")
AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[ApiModel]
    status: type[StatusBase]
    description: str
    columns: tuple[PrinterColumn, ...]
    max_name_length: int = 63
    """Children are named after the object; this keeps their names valid."""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def name_rule(self) -> Cel:
        return Cel(
            rule=f"self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && "
            f"size(self.metadata.name) <= {self.max_name_length}",
            message=f"metadata.name must start with a letter, hold only lower-case letters, "
            f"digits and '-', and be at most {self.max_name_length} characters: the "
            f"{self.kind}'s Pods and Services are named after it",
            reason="FieldValueInvalid",
        )


COMPRESSION_JOB = Kind(
    kind="CompressionJob",
    plural="compressionjobs",
    short_names=("cjob",),
    spec=CompressionJobSpec,
    status=CompressionJobStatus,
    max_name_length=54,  # child Job <name>-compress
    description="Compresses a model by pruning, quantization or distillation, measures size, "
    "speed and quality before and after, and refuses results that lose too much quality.",
    columns=(
        PrinterColumn("Method", ".spec.method", description="Compression method"),
        PHASE,
        PrinterColumn(
            "Ratio", ".status.result.compressionRatio", "number", "Original size / compressed size"
        ),
        PrinterColumn("Speedup", ".status.result.speedup", "number", "Latency speedup", 1),
        PrinterColumn("Drop", ".status.result.metricDrop", "number", "Quality metric drop", 1),
        AGE,
    ),
)

TRAINING_JOB = Kind(
    kind="TrainingJob",
    plural="trainingjobs",
    short_names=("tjob",),
    spec=TrainingJobSpec,
    status=TrainingJobStatus,
    max_name_length=50,  # pod hostnames <name>-worker-<index>
    description="Trains a model across pods with data, model or gradient parallelism, and "
    "restarts the whole gang from its last checkpoint when a pod fails.",
    columns=(
        PrinterColumn("Mode", ".spec.parallelism.mode", description="Parallelism mode"),
        PrinterColumn("Replicas", ".spec.parallelism.replicas", "integer", "Number of pods"),
        PHASE,
        PrinterColumn("Progress", ".status.progressSummary", description="Steps done / planned"),
        PrinterColumn("Restarts", ".status.restarts", "integer", "Gang restarts", 1),
        AGE,
    ),
)

MODEL_VERSION = Kind(
    kind="ModelVersion",
    plural="modelversions",
    short_names=("mv",),
    spec=ModelVersionSpec,
    status=ModelVersionStatus,
    max_name_length=50,  # serving Deployments <name>-serving
    description="One registered version of a model: served, rolled out progressively with "
    "health analysis, and rolled back automatically or on request.",
    columns=(
        PrinterColumn("Model", ".spec.model", description="Model name"),
        PrinterColumn("Version", ".spec.version", description="Version"),
        PHASE,
        PrinterColumn("Weight", ".status.weight", "integer", "Traffic share served, in percent"),
        PrinterColumn(
            "Desired", ".status.desiredWeight", "integer", "Traffic share asked for, in percent"
        ),
        PrinterColumn("Ready", ".status.readyReplicas", "integer", "Ready serving pods", 1),
        AGE,
    ),
)

KINDS: tuple[Kind, ...] = (COMPRESSION_JOB, TRAINING_JOB, MODEL_VERSION)
KINDS_BY_NAME = {kind.kind: kind for kind in KINDS}
