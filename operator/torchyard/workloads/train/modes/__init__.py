"""The three parallelism modes of a TrainingJob: data, model, gradient."""

from __future__ import annotations

from torch import nn

from torchyard.api.training import Hyperparameters, ParallelismSpec
from torchyard.workloads.report import PermanentError
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.modes.base import CheckpointState, State, Strategy
from torchyard.workloads.train.modes.data import DataParallel
from torchyard.workloads.train.modes.gradient import ShardedGradients
from torchyard.workloads.train.modes.model import Pipeline, check_splittable
from torchyard.workloads.train.objectives import Batch, Objective

__all__ = ["CheckpointState", "State", "Strategy", "check", "create"]

STRATEGIES: dict[str, type[Strategy]] = {
    "data": DataParallel,
    "model": Pipeline,
    "gradient": ShardedGradients,
}


def check(parallelism: ParallelismSpec, model: nn.Module, hp: Hyperparameters, world: int) -> None:
    """Refuse, before any rank waits on another, what the mode cannot run."""
    mode = parallelism.mode
    if mode == "model":
        check_splittable(model, world, parallelism.split_points)
        return
    pieces = hp.gradient_accumulation_steps
    if hp.global_batch_size < world * pieces:
        raise PermanentError(
            "BatchSmallerThanWorld",
            f"hyperparameters.globalBatchSize {hp.global_batch_size} is smaller than the "
            f"{world} ranks of mode {mode} times gradientAccumulationSteps {pieces}: every "
            "rank needs at least one sample in each accumulation step",
        )


def create(
    parallelism: ParallelismSpec,
    model: nn.Module,
    hp: Hyperparameters,
    rank: Rank,
    objective: Objective,
    example: Batch | None = None,
) -> Strategy:
    """The mode's strategy; it takes over `model` (mode model keeps only its stage).
    `example`, a batch, is what mode model traces the model on at split points."""
    if parallelism.mode == "model":
        return Pipeline(model, hp, rank, objective, parallelism.split_points, example)
    return STRATEGIES[parallelism.mode](model, hp, rank, objective)  # type: ignore[call-arg]
