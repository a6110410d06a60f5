"""The batches each rank computes: its samples of every step, read and tokenized by a
DataLoader, and its share of the evaluation set.

The samples of a step come from the schedule (schedule.py: a seeded order per epoch,
exactly `globalBatchSize` samples a step, whatever the world size), and each rank takes
its share of them: what torch's DistributedSampler does, except that a job resumed at
step s starts the DataLoader at step s of the same order (DistributedSampler can only
restart an epoch), and that the global batch, not the per-rank batch, stays fixed when
the number of ranks changes. A rank's share of a step is cut into
gradientAccumulationSteps pieces, each one forward and backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from torchyard.api.training import TextTask
from torchyard.workloads.records import Records, label_of, number_of, text_of
from torchyard.workloads.textmodels import tokenize
from torchyard.workloads.train.objectives import Batch
from torchyard.workloads.train.schedule import Schedule

Local = Callable[[torch.Tensor], torch.Tensor]


class StepSampler(Sampler[list[int]]):
    """This rank's samples of each step from `start` on, in `pieces` parts a step."""

    def __init__(self, schedule: Schedule, local: Local, start: int, pieces: int) -> None:
        self.schedule, self.local, self.start, self.pieces = schedule, local, start, pieces

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.schedule.total_steps):
            for part in torch.tensor_split(self.local(self.schedule.batch(step)), self.pieces):
                yield part.tolist()

    def __len__(self) -> int:
        return (self.schedule.total_steps - self.start) * self.pieces


def grouped(batches: Iterator[Batch], pieces: int) -> Iterator[list[Batch]]:
    """The pieces of each step together."""
    while True:
        group = [batch for _, batch in zip(range(pieces), batches, strict=False)]
        if len(group) < pieces:
            return
        yield group


def evaluation_batches(count: int, batch_size: int, rank: int, world: int) -> list[list[int]]:
    """This rank's evaluation batches: the set in order, cut in batches, dealt out in
    turn. Batches are the same whatever the world size, and so are their figures."""
    starts = range(rank * batch_size, count, world * batch_size)
    return [list(range(start, min(start + batch_size, count))) for start in starts]


class RecordDataset(Dataset[tuple[int, dict[str, Any]]]):
    """Records by index, read when a batch needs them (in a DataLoader worker)."""

    def __init__(self, records: Records) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[int, dict[str, Any]]:
        return index, self.records[index]


class TextCollate:
    """Tokenizes a batch of records into the model's inputs and the task's targets.
    For embedding, the texts and then their partners, in one batch of twice the size."""

    def __init__(
        self,
        tokenizer: Any,
        task: TextTask,
        labels: Sequence[str],
        records: Records,
        fixed_length: bool = False,
    ) -> None:
        self.tokenizer, self.task, self.records = tokenizer, task, records
        self.fixed_length = fixed_length
        self.classes = {label: index for index, label in enumerate(labels)}

    def __call__(self, items: list[tuple[int, dict[str, Any]]]) -> Batch:
        task, records = self.task, self.records
        texts = [text_of(records, i, record, task.text_field) for i, record in items]
        if task.type == "embedding":
            assert task.pair_field is not None
            texts += [text_of(records, i, record, task.pair_field) for i, record in items]
        encoded = tokenize(self.tokenizer, texts, task.max_length, self.fixed_length)
        batch: Batch = {key: value for key, value in encoded.items()}
        if task.type == "classification":
            targets = [self.classes[label_of(records, i, r, task.label_field)] for i, r in items]
            batch["labels"] = torch.tensor(targets, dtype=torch.long)
        elif task.type == "regression":
            numbers = [number_of(records, i, r, task.label_field) for i, r in items]
            batch["labels"] = torch.tensor(numbers, dtype=torch.float32)
        return batch


def record_loader(
    records: Records,
    collate: TextCollate,
    sampler: Sampler[list[int]] | Sequence[list[int]],
    workers: int,
) -> DataLoader[Any]:
    return DataLoader(
        RecordDataset(records),
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        # Its own generator: a DataLoader draws its workers' seed when iterated, which
        # must not move the global generator (dropout) that a resumed job restores.
        generator=torch.Generator(),
        persistent_workers=False,
    )
