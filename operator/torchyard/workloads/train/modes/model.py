"""mode model: the model's layers split across ranks as pipeline stages (GPipe).

The model must be an nn.Sequential; its top-level layers are cut into one contiguous
stage per rank, balanced by parameter count, and each rank keeps only its stage (the
rest of the model it loaded is dropped). torch.distributed.pipelining runs the stages:
the global batch is cut into equal microbatches, activations flow forward and gradients
backward between neighbouring ranks over send/recv (gloo or NCCL), and the gradients of
the microbatches are averaged, so one step equals one step on the whole batch.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.distributed as dist
from torch import nn

from torchyard.api.training import Hyperparameters
from torchyard.workloads.report import PermanentError
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

# Microbatches per stage: more shrink the pipeline bubble ((S-1)/(M+S-1) of the time),
# fewer cost less per-message overhead; two per stage halves the bubble of one.
MICROBATCHES_PER_STAGE = 2


def check_splittable(model: nn.Module, stages: int) -> None:
    if not isinstance(model, nn.Sequential):
        raise PermanentError(
            "ModelNotSplittable",
            f"parallelism.mode model splits an nn.Sequential's layers across ranks; this "
            f"model is a {type(model).__name__}. Use mode data or gradient, or a factory "
            "that returns nn.Sequential",
        )
    if len(model) < stages:
        raise PermanentError(
            "ModelNotSplittable",
            f"parallelism.mode model needs at least one layer per rank: the model has "
            f"{len(model)} top-level layers for {stages} ranks",
        )


def partition(sizes: list[int], parts: int) -> list[tuple[int, int]]:
    """Cut `sizes` into `parts` non-empty contiguous [start, end) ranges so that the
    largest range's sum is as small as possible (ties: the earliest cuts)."""
    count = len(sizes)
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    infinity = float("inf")
    # best[k][i]: smallest largest-part for the first i layers in k parts; cut[k][i]: where
    # the k-th part begins in that best split.
    best = [[infinity] * (count + 1) for _ in range(parts + 1)]
    cut = [[0] * (count + 1) for _ in range(parts + 1)]
    best[0][0] = 0
    for k in range(1, parts + 1):
        for i in range(k, count + 1):
            for j in range(k - 1, i):
                largest = max(best[k - 1][j], prefix[i] - prefix[j])
                if largest < best[k][i]:
                    best[k][i], cut[k][i] = largest, j
    ranges = []
    end = count
    for k in range(parts, 0, -1):
        start = cut[k][end]
        ranges.append((start, end))
        end = start
    return ranges[::-1]


def microbatches(global_batch: int, stages: int, accumulation: int = 1) -> int:
    """The largest count up to MICROBATCHES_PER_STAGE * stages * accumulation that
    divides the batch: equal microbatches keep each one's mean loss a fair part of the
    batch mean. A pipeline's microbatches are its gradient accumulation steps."""
    target = min(global_batch, MICROBATCHES_PER_STAGE * stages * accumulation)
    return next(m for m in range(target, 0, -1) if global_batch % m == 0)


class Pipeline(Strategy):
    mode = "model"

    def __init__(
        self, model: nn.Sequential, hp: Hyperparameters, rank: Rank, objective: Objective
    ) -> None:
        # Imported here: it pulls in torch._dynamo (3 s), which the other modes skip.
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        super().__init__(rank, hp, objective)
        accumulation, self.pieces = self.pieces, 1
        check_splittable(model, rank.world)
        sizes = [parameter_count(layer) for layer in model]
        self.stages = partition(sizes, rank.world)
        start, end = self.stages[rank.rank]
        names = list(model._modules)[start:end]
        # Keep the layers' names ("2", "3", ...) so the stage's state_dict keys are the
        # whole model's keys and the stages merge back into the model without renaming.
        self.module = nn.Sequential(OrderedDict((n, model._modules[n]) for n in names))
        self.module.to(rank.device)
        self.first = rank.rank == 0
        self.last = rank.rank == rank.world - 1
        self.stage = PipelineStage(self.module, rank.rank, rank.world, rank.device)
        self.schedule = ScheduleGPipe(
            self.stage,
            n_microbatches=microbatches(hp.global_batch_size, rank.world, accumulation),
            loss_fn=nn.functional.cross_entropy,
        )
        params = list(self.module.parameters())
        # A stage of parameter-free layers (an activation) has nothing to optimise.
        self.optimizer = make_optimizer(params, hp) if params else None

    def local_samples(self, indices: torch.Tensor) -> torch.Tensor:
        # The first stage reads every sample's features, the last every label.
        return indices

    def train_step(self, pieces: list[Batch]) -> torch.Tensor:
        (batch,) = pieces
        features, labels = batch["features"], batch["labels"]
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        losses: list[torch.Tensor] = []
        if self.first:
            self.schedule.step(features)
        elif self.last:
            self.schedule.step(target=labels, losses=losses)
        else:
            self.schedule.step()
        if self.optimizer is not None:
            self.optimizer.step()
        if not self.last:
            return torch.zeros((), device=self.rank.device)
        # Equal microbatches: the mean of their mean losses is the batch's mean loss.
        return torch.stack(losses).mean().detach()

    def checkpoint_state(self) -> CheckpointState:
        own: State = {"model": self.module.state_dict()}
        if self.optimizer is not None:
            own["optimizer"] = self.optimizer.state_dict()
        return CheckpointState(own=own)

    def restore(self, shared: State | None, own: State | None) -> None:
        assert own is not None, "a pipeline checkpoint has one stage per rank"
        self.module.load_state_dict(own["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(own["optimizer"])

    def full_state_dict(self) -> State | None:
        parts: list[State] | None = [{}] * self.rank.world if self.rank.is_leader else None
        dist.gather_object(to_cpu(self.module.state_dict()), parts, dst=0)
        if parts is None:
            return None
        return {key: value for part in parts for key, value in part.items()}

    def held_parameters(self) -> int:
        return parameter_count(self.module)

    def optimizer_state_bytes(self) -> int:
        return optimizer_state_bytes(self.optimizer)

    def layout(self) -> State:
        return {**super().layout(), "stages": [list(stage) for stage in self.stages]}
