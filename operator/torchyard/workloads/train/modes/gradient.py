"""mode gradient: ZeRO stage 2. Parameters are replicated; gradients and optimizer state
are sharded, so each of N ranks keeps about 1/N of them.

Every rank computes its share of the batch on its full replica. The gradients, flattened
into one buffer, are reduce-scattered: rank r receives the summed gradient of the r-th
contiguous slice of all parameters and nothing else (the full gradients are freed). Each
rank's optimizer owns only that slice (a flat fp32 tensor), so Adam's two moments exist
once across the job instead of once per rank. After the step the updated slices are
all-gathered back into every replica.

Why hand-written rather than FSDP or ZeroRedundancyOptimizer: FSDP's SHARD_GRAD_OP
(fully_shard with reshard_after_forward=False in FSDP2) keeps parameters sharded between
steps, which is not what this mode promises, and its checkpoints need DTensor-aware
saving; ZeroRedundancyOptimizer shards whole parameters (a 32k-weight matrix cannot be
split, so two ranks may hold 65% and 35%) and leaves gradients all-reduced in full.
Slicing one flat buffer gives every rank exactly ceil(P/N) elements, and the elementwise
optimizers (SGD, Adam, AdamW) compute the same update on a slice as on the whole.
Both collectives work on gloo (CPU) and NCCL.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from torchyard.api.training import Hyperparameters
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.modes.base import (
    CheckpointState,
    State,
    Strategy,
    loss_share,
    make_optimizer,
    optimizer_state_bytes,
    parameter_count,
    to_cpu,
)
from torchyard.workloads.train.schedule import rank_share


class ShardedGradients(Strategy):
    mode = "gradient"

    def __init__(
        self, model: nn.Module, hp: Hyperparameters, rank: Rank, global_batch: int
    ) -> None:
        super().__init__(rank, global_batch)
        self.module = model.to(rank.device)
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        # Replicas must start equal: nothing else (no DDP) broadcasts them.
        with torch.no_grad():
            for param in self.params:
                dist.broadcast(param, src=0)
        self.numel = sum(p.numel() for p in self.params)
        self.shard_size = math.ceil(self.numel / rank.world)
        start = rank.rank * self.shard_size
        # The last slice is padded with zeros so that every rank's slice has one size
        # (the collectives need equal parts); zero weights with zero gradients stay zero.
        self.shard = nn.Parameter(self._flat_params()[start : start + self.shard_size].clone())
        self.optimizer = make_optimizer([self.shard], hp)

    def _flat(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        flat = torch.zeros(self.shard_size * self.rank.world, device=self.rank.device)
        offset = 0
        for tensor in tensors:
            flat[offset : offset + tensor.numel()] = tensor.reshape(-1)
            offset += tensor.numel()
        return flat

    def _flat_params(self) -> torch.Tensor:
        return self._flat([p.detach() for p in self.params])

    def local_samples(self, indices: torch.Tensor) -> torch.Tensor:
        return rank_share(indices, self.rank.rank, self.rank.world)

    def train_step(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        for param in self.params:
            param.grad = None
        share = loss_share(self.module(features), labels, self.global_batch)
        share.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat_grads = self._flat(grads)
        for param in self.params:
            param.grad = None  # only this rank's slice of the gradient is kept
        shard_grad = torch.empty(self.shard_size, device=self.rank.device)
        # SUM, not AVG: each rank's loss is already its share of the global batch mean
        # (and gloo has no AVG).
        dist.reduce_scatter_tensor(shard_grad, flat_grads, op=dist.ReduceOp.SUM)
        del flat_grads
        self.shard.grad = shard_grad
        self.optimizer.step()
        self.shard.grad = None
        self._gather_params()
        return share.detach()

    def _gather_params(self) -> None:
        flat = torch.empty(self.shard_size * self.rank.world, device=self.rank.device)
        dist.all_gather_into_tensor(flat, self.shard.detach())
        offset = 0
        with torch.no_grad():
            for param in self.params:
                param.copy_(flat[offset : offset + param.numel()].view_as(param))
                offset += param.numel()

    def checkpoint_state(self) -> CheckpointState:
        # The weights are replicated (one copy, written by rank 0); the optimizer state
        # is this rank's slice only. The weight slice itself is not saved: it is cut
        # again from the restored weights, which were gathered from the slices.
        return CheckpointState(
            shared={"model": self.module.state_dict()},
            own={"optimizer": self.optimizer.state_dict()},
        )

    def restore(self, shared: State | None, own: State | None) -> None:
        assert shared is not None and own is not None, "gradient checkpoints have both parts"
        self.module.load_state_dict(shared["model"])
        start = self.rank.rank * self.shard_size
        with torch.no_grad():
            self.shard.copy_(self._flat_params()[start : start + self.shard_size])
        self.optimizer.load_state_dict(own["optimizer"])

    def full_state_dict(self) -> State | None:
        return to_cpu(self.module.state_dict()) if self.rank.is_leader else None

    def held_parameters(self) -> int:
        return parameter_count(self.module)

    def optimizer_state_bytes(self) -> int:
        return optimizer_state_bytes(self.optimizer)
