"""The TrainingJobSpec a training process runs, from TORCHYARD_SPEC. Imports no torch,
so the launcher reads it before paying for torch's import."""

from __future__ import annotations

from torchyard.api.training import TrainingJobSpec
from torchyard.validation import InvalidSpec, parse_spec
from torchyard.workloads.report import PermanentError, read_spec


def read_training_spec() -> TrainingJobSpec:
    """The spec as the operator passed it (camelCase JSON), parsed and defaulted."""
    try:
        return parse_spec(TrainingJobSpec, read_spec())
    except InvalidSpec as error:
        raise PermanentError("InvalidSpec", str(error)) from None
