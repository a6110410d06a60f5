"""mode data: every rank holds the whole model and computes its share of the batch;
DistributedDataParallel all-reduces the gradients (gloo on CPU, NCCL on GPUs)."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from torchyard.api.training import Hyperparameters
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.modes.base import (
    CheckpointState,
    State,
    Strategy,
    make_optimizer,
    optimizer_state_bytes,
    parameter_count,
    to_cpu,
)
from torchyard.workloads.train.objectives import Batch, Objective
from torchyard.workloads.train.schedule import rank_share


class DataParallel(Strategy):
    mode = "data"

    def __init__(
        self, model: nn.Module, hp: Hyperparameters, rank: Rank, objective: Objective
    ) -> None:
        super().__init__(rank, hp, objective)
        self.module = model.to(rank.device)
        device_ids = [rank.device.index] if rank.device.type == "cuda" else None
        # DDP broadcasts rank 0's weights at construction, so replicas start equal.
        self.ddp = DistributedDataParallel(self.module, device_ids=device_ids)
        trained = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(trained, hp)

    def local_samples(self, indices: torch.Tensor) -> torch.Tensor:
        return rank_share(indices, self.rank.rank, self.rank.world)

    def train_step(self, pieces: list[Batch]) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.rank.device)
        for index, batch in enumerate(pieces):
            # Gradients are all-reduced once, in the last accumulation step's backward.
            last = index == len(pieces) - 1
            with nullcontext() if last else self.ddp.no_sync():
                share = self.share(self.ddp, batch)
                # DDP averages gradients over ranks; scaling by the world size turns that
                # average into the sum of the ranks' shares: the global batch mean's
                # gradient.
                (share * self.rank.world).backward()
            total += share.detach()
        self.optimizer.step()
        return total

    def checkpoint_state(self) -> CheckpointState:
        # Replicas are identical: one copy of weights and optimizer state is enough, and
        # it restores onto any number of ranks.
        shared = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}
        return CheckpointState(shared=shared)

    def restore(self, shared: State | None, own: State | None) -> None:
        assert shared is not None, "a data-parallel checkpoint has shared state"
        self.module.load_state_dict(shared["model"])
        self.optimizer.load_state_dict(shared["optimizer"])

    def full_state_dict(self) -> State | None:
        return to_cpu(self.module.state_dict()) if self.rank.is_leader else None

    def held_parameters(self) -> int:
        return parameter_count(self.module)

    def optimizer_state_bytes(self) -> int:
        return optimizer_state_bytes(self.optimizer)

    def layout(self) -> State:
        return {"mode": self.mode}
