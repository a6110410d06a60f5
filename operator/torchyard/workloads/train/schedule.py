"""Which samples each optimizer step sees, and which of them each rank takes. Pure.

The order depends on nothing but (seed, epoch): a generator is seeded per epoch, so the
batch of any step can be computed without replaying the steps before it, and a job that
resumes at step s continues exactly the order an uninterrupted job would have used.
Every step holds exactly `globalBatchSize` samples (the remainder of an epoch is dropped),
whatever the number of ranks: ranks split the global batch, they do not multiply it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from torchyard.workloads.report import PermanentError

# Spreads the seeds of consecutive epochs apart; any large odd constant would do.
_EPOCH_STRIDE = 1_000_003


@dataclass(frozen=True)
class Schedule:
    """The steps of a training run over `samples` samples."""

    samples: int
    global_batch: int
    epochs: int
    seed: int
    max_steps: int | None = None
    _order: dict[int, torch.Tensor] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.global_batch > self.samples:
            raise PermanentError(
                "BatchLargerThanDataset",
                f"hyperparameters.globalBatchSize {self.global_batch} is larger than the "
                f"dataset ({self.samples} samples); lower it or use more data",
            )

    @property
    def steps_per_epoch(self) -> int:
        return self.samples // self.global_batch

    @property
    def total_steps(self) -> int:
        planned = self.epochs * self.steps_per_epoch
        return planned if self.max_steps is None else min(planned, self.max_steps)

    def epoch_of(self, step: int) -> int:
        """0-based epoch that step `step` (0-based) belongs to."""
        return step // self.steps_per_epoch

    def epochs_reached(self, steps_done: int) -> int:
        """1-based epoch of the last finished step (0 before any step), for progress."""
        return 0 if steps_done == 0 else math.ceil(steps_done / self.steps_per_epoch)

    def batch(self, step: int) -> torch.Tensor:
        """Indices of the samples of step `step` (0-based), in order."""
        epoch = self.epoch_of(step)
        order = self._order.get(epoch)
        if order is None:
            generator = torch.Generator().manual_seed(self.seed * _EPOCH_STRIDE + epoch)
            order = torch.randperm(self.samples, generator=generator)
            self._order.clear()  # one epoch at a time: the order of past ones is not needed
            self._order[epoch] = order
        start = (step % self.steps_per_epoch) * self.global_batch
        return order[start : start + self.global_batch]


def rank_share(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """The contiguous part of a global batch that data-parallel rank `rank` computes.

    Shares differ by at most one sample when the batch does not divide by the world size;
    each rank weighs its loss by its share of the global batch (see modes.base), so the
    gradient is the global batch mean all the same, without accumulation steps.
    """
    return torch.tensor_split(indices, world)[rank]
