"""What every parallelism mode provides to the training loop, and the parts they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchyard.api.training import Hyperparameters
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.objectives import Batch, Objective

State = dict[str, Any]


@dataclass
class CheckpointState:
    """One rank's part of a checkpoint.

    `shared` is identical on every rank (replicated weights and optimizer state): rank 0
    writes it once and every rank reads it. `own` is what only this rank holds (a
    pipeline stage, an optimizer shard): each rank writes and reads its own.
    """

    shared: State | None = None
    own: State = field(default_factory=dict)


class Strategy(ABC):
    """One parallelism mode: how a step is computed and what each rank holds."""

    mode: str
    module: nn.Module
    """The model, or the part of it, that this rank holds."""

    def __init__(self, rank: Rank, hp: Hyperparameters, objective: Objective) -> None:
        self.rank = rank
        self.global_batch = hp.global_batch_size
        self.objective = objective
        self.pieces = hp.gradient_accumulation_steps
        """Forward and backward passes per step (gradient accumulation)."""

    def share(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        """The batch's share of the global batch's mean loss: its samples' summed loss
        over the global batch size, so shares of uneven size still add up exactly."""
        return self.objective.loss_sum(module, batch) / self.global_batch

    @abstractmethod
    def local_samples(self, indices: torch.Tensor) -> torch.Tensor:
        """The samples of a global batch this rank feeds to its model part."""

    @abstractmethod
    def train_step(self, pieces: list[Batch]) -> torch.Tensor:
        """One optimizer step over this rank's batches of the step (one per accumulation
        step). Returns this rank's share of the step's loss (a detached scalar): summed
        over all ranks it is the mean loss over the global batch."""

    @abstractmethod
    def checkpoint_state(self) -> CheckpointState:
        """This rank's part of a checkpoint (tensors may stay on the device)."""

    @abstractmethod
    def restore(self, shared: State | None, own: State | None) -> None:
        """Load what checkpoint_state returned, on every rank."""

    @abstractmethod
    def full_state_dict(self) -> State | None:
        """The whole model's weights on rank 0 (CPU), None elsewhere. Collective."""

    @abstractmethod
    def held_parameters(self) -> int:
        """Parameters this rank keeps in memory."""

    @abstractmethod
    def optimizer_state_bytes(self) -> int:
        """Bytes of optimizer state this rank keeps in memory."""

    def layout(self) -> State:
        """What a checkpoint must have been written with for this mode to restore it."""
        return {"mode": self.mode, "world": self.rank.world}


def make_optimizer(params: Iterable[nn.Parameter], hp: Hyperparameters) -> torch.optim.Optimizer:
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    return torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer | None) -> int:
    if optimizer is None:
        return 0
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor)
    )


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def rng_state() -> State:
    """The random generators a training step can draw from: torch's CPU generator and,
    with a GPU, this rank's CUDA generator (dropout on the device). The workload draws
    nothing from Python's `random` or NumPy; the data order has its own seeded generator
    (schedule.py), so it needs no saving."""
    state: State = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: State | None) -> None:
    """Restore the random generators, so that a resumed run draws the same numbers
    (dropout, random augmentations) as an uninterrupted one would have."""
    if not state:
        return
    # Both setters take a CPU ByteTensor, whatever device the checkpoint was loaded
    # onto (torch.load's map_location moves these states to the rank's GPU too).
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def to_cpu(state: State) -> State:
    return {key: value.detach().cpu() for key, value in state.items()}
