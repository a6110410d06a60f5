"""mode gradient: ZeRO stage 2. Parameters are replicated; gradients and optimizer state
are sharded, so each of N ranks keeps about 1/N of them.

Every rank computes its share of the batch on its full replica. The flat parameter
vector (all parameters in order, padded to N equal slices) is split into N contiguous
slices; rank r owns slice r: its optimizer holds only that slice (a flat fp32 tensor), so
Adam's two moments exist once across the job instead of once per rank. After the step
the updated slices are all-gathered back into every replica.

Gradients are sharded during the backward pass, so that no rank ever holds the whole
model's gradients. The parameters are grouped into buckets: runs of consecutive
parameters, a contiguous range of the flat vector, at most BUCKET_BYTES and at most one
slice. A hook on each parameter (register_post_accumulate_grad_hook) copies its gradient
into its bucket (a parameter that fills a bucket alone is its own: its gradient is
reduced in place) and frees `.grad` at once. When a bucket is complete it is reduced: for
each rank whose slice the bucket's range overlaps (one or two ranks, as a bucket is no
larger than a slice, except a parameter larger than a slice, alone in its bucket), the
overlap is summed onto that rank (`dist.reduce`, on gloo and
NCCL alike: an uneven reduce-scatter), which copies it into its slice's gradient; the
bucket is then freed. The gradients arrive in reverse order, so the buckets are reduced
from the last to the first, and always in that order (a bucket waits for every later
one): every rank issues the same collectives in the same order whatever order its
hooks fire in. A rank thus holds its slice's gradient, one parameter's `.grad` and the
buckets being filled or reduced (one reduction is in flight while backward goes on).
The slices, the optimizer, checkpoints and layout() are those of a whole-buffer
reduce-scatter. With 2 ranks each position is summed exactly as the former reduce-scatter
summed it; with more, the order of the sum may differ from it in the last bit, but is the
same in every run of a given model and world size (so a resumed job still publishes the
uninterrupted job's bytes). The saving assumes the model registers its parameters in
about the order it uses them (as nn.Sequential and transformer stacks do): a bucket is
reduced only after every later one, so a parameter registered last but used first keeps
the earlier buckets alive until the end of backward.

Why hand-written rather than FSDP or ZeroRedundancyOptimizer: FSDP's SHARD_GRAD_OP
(fully_shard with reshard_after_forward=False in FSDP2) keeps parameters sharded between
steps, which is not what this mode promises, and its checkpoints need DTensor-aware
saving; ZeroRedundancyOptimizer shards whole parameters (a 32k-weight matrix cannot be
split, so two ranks may hold 65% and 35%) and leaves gradients all-reduced in full.
Slicing one flat buffer gives every rank exactly ceil(P/N) elements, and the elementwise
optimizers (SGD, Adam, AdamW) compute the same update on a slice as on the whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

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

# Largest bucket of gradients reduced at once (DDP's default), and never more than a slice.
BUCKET_BYTES = 25 * 1024 * 1024


@dataclass
class Bucket:
    """Consecutive parameters: the range [start, end) of the flat parameter vector."""

    index: int
    start: int
    end: int
    params: list[int]  # indexes into the strategy's parameters
    buffer: torch.Tensor | None = None  # the gradients, while being filled
    waiting: int = 0  # parameters whose gradient has not arrived yet this step
    reductions: list[tuple[dist.Work, int, int]] = field(default_factory=list)


class ShardedGradients(Strategy):
    mode = "gradient"

    def __init__(
        self,
        model: nn.Module,
        hp: Hyperparameters,
        rank: Rank,
        objective: Objective,
        bucket_bytes: int = BUCKET_BYTES,
    ) -> None:
        super().__init__(rank, hp, objective)
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
        self.offsets: list[int] = []
        offset = 0
        for param in self.params:
            self.offsets.append(offset)
            offset += param.numel()
        self.buckets = self._make_buckets(max(1, min(bucket_bytes // 4, self.shard_size)))
        self.bucket_of = {i: b for b in self.buckets for i in b.params}
        self.shard_grad: torch.Tensor | None = None  # set during a step's backward only
        self.next_bucket = -1  # the next bucket to reduce: the last not yet reduced
        self.in_flight: list[Bucket] = []
        for index, param in enumerate(self.params):
            param.register_post_accumulate_grad_hook(self._hook(index))

    def _make_buckets(self, capacity: int) -> list[Bucket]:
        buckets: list[Bucket] = []
        for index, param in enumerate(self.params):
            last = buckets[-1] if buckets else None
            if last is None or last.end - last.start + param.numel() > capacity:
                begin = self.offsets[index]
                last = Bucket(index=len(buckets), start=begin, end=begin, params=[])
                buckets.append(last)
            last.params.append(index)
            last.end += param.numel()
        return buckets

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

    # -- sharding gradients during backward ------------------------------------------------

    def _hook(self, index: int) -> Callable[[torch.Tensor], None]:
        def hook(param: torch.Tensor) -> None:
            if self.shard_grad is None or param.grad is None:
                return  # a backward outside train_step: leave .grad to its caller
            bucket = self.bucket_of[index]
            self._put(bucket, index, param.grad)
            param.grad = None  # only the bucket's copy is kept, and only until reduced
            self._reduce_ready()

        return hook

    def _put(self, bucket: Bucket, index: int, grad: torch.Tensor) -> None:
        bucket.waiting -= 1
        if len(bucket.params) == 1 and grad.dtype == torch.float32 and grad.is_contiguous():
            # A parameter as large as a bucket is its own bucket: reduce its gradient
            # where it lies rather than copy it.
            bucket.buffer = grad.detach().view(-1)
            return
        if bucket.buffer is None:
            bucket.buffer = torch.zeros(bucket.end - bucket.start, device=self.rank.device)
        begin = self.offsets[index] - bucket.start
        bucket.buffer[begin : begin + grad.numel()] = grad.reshape(-1)

    def _reduce_ready(self) -> None:
        """Reduce the complete buckets, from the last down, stopping at one still waiting."""
        while self.next_bucket >= 0 and self.buckets[self.next_bucket].waiting == 0:
            self._reduce(self.buckets[self.next_bucket])
            self.next_bucket -= 1

    def _reduce(self, bucket: Bucket) -> None:
        # One reduction in flight at a time: finish the earlier bucket before this one.
        self._finish_reductions()
        if bucket.buffer is None:  # no gradient reached it (unused parameters)
            bucket.buffer = torch.zeros(bucket.end - bucket.start, device=self.rank.device)
        first = bucket.start // self.shard_size
        last = (bucket.end - 1) // self.shard_size
        for owner in range(first, last + 1):
            lo = max(bucket.start, owner * self.shard_size)
            hi = min(bucket.end, (owner + 1) * self.shard_size)
            part = bucket.buffer[lo - bucket.start : hi - bucket.start]
            # SUM, not AVG: each rank's loss is already its share of the global batch
            # mean (and gloo has no AVG).
            work = dist.reduce(part, dst=owner, op=dist.ReduceOp.SUM, async_op=True)
            bucket.reductions.append((work, owner, lo))
        self.in_flight.append(bucket)

    def _finish_reductions(self) -> None:
        assert self.shard_grad is not None
        for bucket in self.in_flight:
            assert bucket.buffer is not None
            for work, owner, lo in bucket.reductions:
                work.wait()
                if owner == self.rank.rank:
                    hi = min(bucket.end, (owner + 1) * self.shard_size)
                    mine = lo - owner * self.shard_size
                    part = bucket.buffer[lo - bucket.start : hi - bucket.start]
                    self.shard_grad[mine : mine + hi - lo] = part
            bucket.reductions.clear()
            bucket.buffer = None
        self.in_flight.clear()

    def gradient_bytes(self) -> int:
        """Bytes of gradients this rank holds now: its slice's, the buckets', and any
        parameter's `.grad`."""
        tensors = [p.grad for p in self.params] + [b.buffer for b in self.buckets]
        tensors += [self.shard_grad, self.shard.grad]
        seen: set[int] = set()
        total = 0
        for tensor in tensors:
            if tensor is not None and id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
        return total

    def train_step(self, pieces: list[Batch]) -> torch.Tensor:
        for param in self.params:
            param.grad = None
        total = torch.zeros((), device=self.rank.device)
        # Accumulation steps before the last leave their gradients in .grad (the hooks
        # are off while shard_grad is None); the last one's backward adds to them and
        # shards the sum.
        for batch in pieces[:-1]:
            share = self.share(self.module, batch)
            share.backward()
            total += share.detach()
        # Positions past the parameters (the last slice's padding) keep a zero gradient.
        self.shard_grad = torch.zeros(self.shard_size, device=self.rank.device)
        for bucket in self.buckets:
            bucket.waiting = len(bucket.params)
        self.next_bucket = len(self.buckets) - 1
        try:
            share = self.share(self.module, pieces[-1])
            share.backward()
            # Buckets with parameters that got no gradient, in the same order on all ranks.
            while self.next_bucket >= 0:
                self._reduce(self.buckets[self.next_bucket])
                self.next_bucket -= 1
            self._finish_reductions()
            self.shard.grad, self.shard_grad = self.shard_grad, None
        finally:
            self.shard_grad = None
            self.in_flight.clear()
            for bucket in self.buckets:
                bucket.buffer = None
                bucket.reductions.clear()
        self.optimizer.step()
        self.shard.grad = None
        self._gather_params()
        return total + share.detach()

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
