"""The spec, model and data of a training process, checked before any rank waits on
another: a problem found here fails every rank the same way, at once, as permanent.

Two kinds of input: labelled feature tensors (the model classifies them), and records
of text for a task (the workload tokenizes them and trains a head on a text encoder).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchyard.api.training import TextTask, TrainingJobSpec
from torchyard.factories import FactoryNotAllowed
from torchyard.storage import StorageError, fetch, read_manifest
from torchyard.workloads.datasets import DatasetError, TensorData, load_dataset
from torchyard.workloads.models import ModelLoadError, load_model
from torchyard.workloads.records import Records, check_records, open_records
from torchyard.workloads.report import PermanentError
from torchyard.workloads.textmodels import (
    TextTaskModel,
    is_text_encoder,
    load_tokenizer,
    tokenizer_dir,
)
from torchyard.workloads.train import modes
from torchyard.workloads.train.batches import (
    RecordDataset,
    StepSampler,
    TextCollate,
    evaluation_batches,
    grouped,
    record_loader,
)
from torchyard.workloads.train.objectives import (
    TEXT_OBJECTIVES,
    Batch,
    Objective,
    TensorClassification,
)
from torchyard.workloads.train.output import check_rebuildable
from torchyard.workloads.train.schedule import Schedule

Local = Callable[[torch.Tensor], torch.Tensor]


class Inputs(ABC):
    """The data of a run: the steps' batches, the evaluation set's, and the objective."""

    schedule: Schedule
    evaluation_batch: int | None
    """Samples per evaluation batch; None without an evaluation set."""

    @abstractmethod
    def prepare(self, spec: TrainingJobSpec, model: nn.Module, world: int) -> nn.Module:
        """The model to train, checked against the data (a text task adds its head)."""

    @abstractmethod
    def objective(self, device_type: str, bf16: bool) -> Objective: ...

    @abstractmethod
    def steps(self, start: int, local: Local, pieces: int) -> Iterator[list[Batch]]:
        """This rank's batches of each step from `start`: `pieces` per step."""

    @abstractmethod
    def evaluation(self, rank: int, world: int) -> Iterator[Batch]:
        """This rank's share of the evaluation set."""

    @abstractmethod
    def example(self, count: int) -> Batch:
        """The first `count` training samples as a batch (what mode model traces on)."""


@dataclass
class TensorInputs(Inputs):
    features: torch.Tensor
    labels: torch.Tensor
    schedule: Schedule
    evaluation_data: TensorData | None = None
    evaluation_batch: int | None = None

    def prepare(self, spec: TrainingJobSpec, model: nn.Module, world: int) -> nn.Module:
        check_fit(spec, model, self, world)
        return model

    def objective(self, device_type: str, bf16: bool) -> Objective:
        return TensorClassification(device_type, bf16)

    def steps(self, start: int, local: Local, pieces: int) -> Iterator[list[Batch]]:
        for step in range(start, self.schedule.total_steps):
            parts = torch.tensor_split(local(self.schedule.batch(step)), pieces)
            yield [{"features": self.features[p], "labels": self.labels[p]} for p in parts]

    def example(self, count: int) -> Batch:
        return {"features": self.features[:count], "labels": self.labels[:count]}

    def evaluation(self, rank: int, world: int) -> Iterator[Batch]:
        data = self.evaluation_data
        assert data is not None and data.labels is not None and self.evaluation_batch
        for indices in evaluation_batches(len(data), self.evaluation_batch, rank, world):
            yield {"features": data.features[indices], "labels": data.labels[indices]}


@dataclass
class TextInputs(Inputs):
    task: TextTask
    records: Records
    classes: list[str]
    tokenizer: Any
    schedule: Schedule
    workers: int = 0
    evaluation_records: Records | None = None
    evaluation_batch: int | None = None
    evaluation_workers: int = 0
    fixed_length: bool = False
    """Pad every text to task.maxLength (a traced pipeline stage has fixed shapes)."""

    def prepare(self, spec: TrainingJobSpec, model: nn.Module, world: int) -> nn.Module:
        if not is_text_encoder(model):
            raise PermanentError(
                "ModelDoesNotFitData",
                f"task type {self.task.type} fine-tunes a text encoder; model "
                f"{spec.model.uri} is a {type(model).__name__}. Give a Hugging Face "
                "encoder (format huggingface, e.g. builtin://all-minilm-l6-v2) or a "
                "torchyard artifact of one",
            )
        outputs = len(self.classes) if self.task.type == "classification" else 1
        if isinstance(model, TextTaskModel):
            same = model.task == self.task.type and model.labels == self.classes
            if not same:
                model = model.encoder
            else:
                model.max_length = self.task.max_length
        if not isinstance(model, TextTaskModel):
            # The head's initial weights are the same on every rank and in every attempt.
            torch.manual_seed(spec.hyperparameters.seed)
            model = TextTaskModel(
                model, self.task.type, self.classes, outputs, self.task.max_length
            )
        if self.task.freeze_encoder:
            model.freeze_encoder()
        model.train()  # a Hugging Face model loads in eval mode: dropout on for training
        modes.check(spec.parallelism, model, spec.hyperparameters, world)
        hp = spec.hyperparameters
        piece = hp.global_batch_size // (world * hp.gradient_accumulation_steps)
        if self.task.type == "embedding" and piece < 2:
            raise PermanentError(
                "BatchSmallerThanWorld",
                f"task type embedding contrasts each text with the other texts of its "
                f"rank's accumulation step; globalBatchSize {hp.global_batch_size} over "
                f"{world} ranks and {hp.gradient_accumulation_steps} accumulation steps "
                "leaves fewer than 2. Raise globalBatchSize or lower "
                "gradientAccumulationSteps",
            )
        return model

    def objective(self, device_type: str, bf16: bool) -> Objective:
        return TEXT_OBJECTIVES[self.task.type](device_type, bf16)

    def _collate(self, records: Records) -> TextCollate:
        return TextCollate(self.tokenizer, self.task, self.classes, records, self.fixed_length)

    def example(self, count: int) -> Batch:
        dataset = RecordDataset(self.records)
        return self._collate(self.records)([dataset[i] for i in range(count)])

    def steps(self, start: int, local: Local, pieces: int) -> Iterator[list[Batch]]:
        sampler = StepSampler(self.schedule, local, start, pieces)
        loader = record_loader(self.records, self._collate(self.records), sampler, self.workers)
        return grouped(iter(loader), pieces)

    def evaluation(self, rank: int, world: int) -> Iterator[Batch]:
        records = self.evaluation_records
        assert records is not None and self.evaluation_batch
        batches = evaluation_batches(len(records), self.evaluation_batch, rank, world)
        collate = self._collate(records)
        return iter(record_loader(records, collate, batches, self.evaluation_workers))


def load_data(spec: TrainingJobSpec) -> Inputs:
    try:
        if spec.task is not None:
            return _text_inputs(spec, spec.task)
        return _tensor_inputs(spec)
    except DatasetError as error:
        raise PermanentError("DatasetUnavailable", str(error)) from None


def _schedule(spec: TrainingJobSpec, samples: int) -> Schedule:
    hp = spec.hyperparameters
    return Schedule(
        samples=samples,
        global_batch=hp.global_batch_size,
        epochs=hp.epochs,
        seed=hp.seed,
        max_steps=hp.max_steps,
    )


def _tensor_inputs(spec: TrainingJobSpec) -> TensorInputs:
    data = _labelled_tensors(spec.dataset.uri, load_dataset(spec.dataset))
    evaluation = spec.evaluation
    held_out = None
    if evaluation is not None:
        held_out = _labelled_tensors(evaluation.dataset.uri, load_dataset(evaluation.dataset))
    assert data.labels is not None
    return TensorInputs(
        data.features,
        data.labels,
        _schedule(spec, len(data)),
        held_out,
        evaluation.batch_size if evaluation else None,
    )


def _labelled_tensors(uri: str, data: Any) -> TensorData:
    if not isinstance(data, TensorData):
        raise PermanentError(
            "DatasetNotSupported",
            f"dataset {uri} is text; training without a task takes labelled feature tensors "
            "(builtin://digits, breast_cancer, wine, iris, or a file of features and "
            "labels). Set spec.task to fine-tune a text encoder on it",
        )
    if data.labels is None or bool((data.labels < 0).any()):
        raise PermanentError(
            "DatasetUnlabelled",
            f"dataset {uri} has samples without a label; training minimises "
            "the cross-entropy of class labels, so every sample needs one (a 'labels' "
            "tensor of class indices next to 'features')",
        )
    return data


def _text_inputs(spec: TrainingJobSpec, task: TextTask) -> TextInputs:
    records = open_records(spec.dataset)
    classes = check_records(records, task)
    evaluation = spec.evaluation
    held_out = None
    if evaluation is not None:
        held_out = open_records(evaluation.dataset)
        # The evaluation set's labels must be classes the model has.
        known = task.model_copy(update={"labels": classes}) if classes else task
        check_records(held_out, known)
    return TextInputs(
        task,
        records,
        classes,
        load_tokenizer(_tokenizer_location(spec)),
        _schedule(spec, len(records)),
        spec.dataset.loader_workers,
        held_out,
        evaluation.batch_size if evaluation else None,
        evaluation.dataset.loader_workers if evaluation else 0,
        fixed_length=spec.parallelism.mode == "model",
    )


def _tokenizer_location(spec: TrainingJobSpec) -> Path:
    source = spec.model
    found = None
    if source.uri is not None:
        try:
            path = fetch(source.uri)
            manifest = read_manifest(path) if source.format == "torchyard" else {}
        except (StorageError, ValueError) as error:
            raise PermanentError("ModelUnavailable", str(error)) from None
        found = tokenizer_dir(path, source.format, manifest)
    if found is None:
        raise PermanentError(
            "ModelDoesNotFitData",
            "a task fine-tunes a text encoder and tokenizes with its tokenizer: give "
            "model.format huggingface (e.g. builtin://all-minilm-l6-v2) or a torchyard "
            "artifact of a Hugging Face model",
        )
    return found


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


def check_fit(spec: TrainingJobSpec, model: nn.Module, inputs: TensorInputs, world: int) -> None:
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
    if inputs.evaluation_data is not None and inputs.evaluation_data.labels is not None:
        held_out = int(inputs.evaluation_data.labels.max()) + 1
        if held_out > output.shape[1]:
            raise PermanentError(
                "ModelDoesNotFitData",
                f"the evaluation set has class {held_out - 1}; the model has "
                f"{output.shape[1]} outputs",
            )
    modes.check(spec.parallelism, model, spec.hyperparameters, world)
