"""The torchyard API: one typed source for the CRDs, the operator and the workloads."""

from torchyard.api.base import API_VERSION, GROUP, VERSION, ApiModel, Condition
from torchyard.api.compression import CompressionJobSpec, CompressionJobStatus
from torchyard.api.kinds import (
    COMPRESSION_JOB,
    KINDS,
    KINDS_BY_NAME,
    MODEL_VERSION,
    TRAINING_JOB,
    Kind,
)
from torchyard.api.modelversion import ModelVersionSpec, ModelVersionStatus
from torchyard.api.training import TrainingJobSpec, TrainingJobStatus

__all__ = [
    "API_VERSION",
    "COMPRESSION_JOB",
    "GROUP",
    "KINDS",
    "KINDS_BY_NAME",
    "MODEL_VERSION",
    "TRAINING_JOB",
    "VERSION",
    "ApiModel",
    "CompressionJobSpec",
    "CompressionJobStatus",
    "Condition",
    "Kind",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "TrainingJobSpec",
    "TrainingJobStatus",
]
