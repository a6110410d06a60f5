"""The spec, model and data of a training process, checked before any rank waits on
another: a problem found here fails every rank the same way, at once, as permanent."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torchyard.api.training import TrainingJobSpec
from torchyard.factories import FactoryNotAllowed
from torchyard.storage import StorageError
from torchyard.workloads.datasets import DatasetError, TensorData, load_dataset
from torchyard.workloads.models import ModelLoadError, load_model
from torchyard.workloads.report import PermanentError
from torchyard.workloads.train import modes
from torchyard.workloads.train.output import check_rebuildable
from torchyard.workloads.train.schedule import Schedule


@dataclass(frozen=True)
class Inputs:
    features: torch.Tensor
    labels: torch.Tensor
    schedule: Schedule


def load_data(spec: TrainingJobSpec) -> Inputs:
    try:
        data = load_dataset(spec.dataset)
    except DatasetError as error:
        raise PermanentError("DatasetUnavailable", str(error)) from None
    if not isinstance(data, TensorData):
        raise PermanentError(
            "DatasetNotSupported",
            f"dataset {spec.dataset.uri} is text; training takes labelled feature tensors "
            "(builtin://digits, breast_cancer, wine, iris, or a file of features and labels)",
        )
    if data.labels is None or bool((data.labels < 0).any()):
        raise PermanentError(
            "DatasetUnlabelled",
            f"dataset {spec.dataset.uri} has samples without a label; training minimises "
            "the cross-entropy of class labels, so every sample needs one (a 'labels' "
            "tensor of class indices next to 'features')",
        )
    hp = spec.hyperparameters
    schedule = Schedule(
        samples=len(data),
        global_batch=hp.global_batch_size,
        epochs=hp.epochs,
        seed=hp.seed,
        max_steps=hp.max_steps,
    )
    return Inputs(data.features, data.labels, schedule)


def load_initial_model(spec: TrainingJobSpec) -> nn.Module:
    """The model at its starting weights; the same on every rank (seeded)."""
    check_rebuildable(spec.model)
    # A factory that initialises randomly draws the same weights on every rank.
    torch.manual_seed(spec.hyperparameters.seed)
    try:
        return load_model(spec.model)
    except FactoryNotAllowed as error:
        raise PermanentError(error.reason, str(error)) from None
    except (ModelLoadError, StorageError) as error:
        raise PermanentError("ModelUnavailable", str(error)) from None


def check_fit(spec: TrainingJobSpec, model: nn.Module, inputs: Inputs, world: int) -> None:
    """The model must map a batch of features to one logit per class of the data."""
    classes = int(inputs.labels.max()) + 1
    model.eval()
    with torch.no_grad():
        try:
            output = model(inputs.features[:2])
        except Exception as error:
            raise PermanentError(
                "ModelDoesNotFitData",
                f"the model cannot take the dataset's features of shape "
                f"{list(inputs.features.shape[1:])}: {error}",
            ) from None
    model.train()
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[1] < classes:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise PermanentError(
            "ModelDoesNotFitData",
            f"the model maps 2 samples to {shape}; training needs logits of shape "
            f"[batch, classes] with at least the dataset's {classes} classes",
        )
    modes.check(spec.parallelism.mode, model, spec.hyperparameters.global_batch_size, world)
