"""The three parallelism modes of a TrainingJob: data, model, gradient."""

from __future__ import annotations

from torch import nn

from torchyard.api.training import Hyperparameters, ParallelismMode
from torchyard.workloads.report import PermanentError
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.modes.base import CheckpointState, State, Strategy
from torchyard.workloads.train.modes.data import DataParallel
from torchyard.workloads.train.modes.gradient import ShardedGradients
from torchyard.workloads.train.modes.model import Pipeline, check_splittable

__all__ = ["CheckpointState", "State", "Strategy", "check", "create"]

STRATEGIES: dict[str, type[Strategy]] = {
    "data": DataParallel,
    "model": Pipeline,
    "gradient": ShardedGradients,
}


def check(mode: ParallelismMode, model: nn.Module, global_batch: int, world: int) -> None:
    """Refuse, before any rank waits on another, what the mode cannot run."""
    if mode == "model":
        check_splittable(model, world)
    elif global_batch < world:
        raise PermanentError(
            "BatchSmallerThanWorld",
            f"hyperparameters.globalBatchSize {global_batch} is smaller than the {world} "
            f"ranks of mode {mode}: every rank needs at least one sample per step",
        )


def create(mode: ParallelismMode, model: nn.Module, hp: Hyperparameters, rank: Rank) -> Strategy:
    """The mode's strategy; it takes over `model` (mode model keeps only its stage)."""
    return STRATEGIES[mode](model, hp, rank, hp.global_batch_size)  # type: ignore[arg-type]
