"""The process group of one training process: who it is, on which device, over what."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from torchyard.workloads.report import PermanentError


@dataclass(frozen=True)
class Rank:
    """This process's place in the job, as torch's elastic launcher sets it."""

    rank: int
    world: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_leader(self) -> bool:
        """Rank 0 reports progress, writes the artifact and the result. The launcher's
        static rendezvous makes node rank 0 (replica 0) hold local ranks 0.., so the
        leader always runs in replica 0, where the operator looks for it."""
        return self.rank == 0


def choose_backend(requested: str) -> str:
    """auto: NCCL when this process sees a GPU, else gloo (CPU)."""
    if requested == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if requested == "nccl" and not torch.cuda.is_available():
        raise PermanentError(
            "NoGPU",
            "parallelism.backend is nccl but this pod sees no GPU; request GPUs in "
            "resources or use backend auto or gloo",
        )
    return requested


def from_environment(requested_backend: str) -> Rank:
    """Rank and world from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK)."""
    backend = choose_backend(requested_backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    return Rank(
        rank=int(os.environ.get("RANK", "0")),
        world=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=local_rank,
        backend=backend,
        device=device,
    )


def start(rank: Rank) -> None:
    """Join the process group (env://: the launcher's store at MASTER_ADDR:MASTER_PORT)."""
    if rank.device.type == "cuda":
        torch.cuda.set_device(rank.device)
    dist.init_process_group(
        rank.backend,
        rank=rank.rank,
        world_size=rank.world,
        device_id=rank.device if rank.device.type == "cuda" else None,
    )


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_agree(rank: Rank, flag: bool) -> bool:
    """True only when `flag` is true on every rank (e.g. every rank's device computes
    bf16 natively): a setting the ranks decide alone must come out the same on all."""
    if rank.world == 1:
        return flag
    value = torch.tensor([int(flag)], device=rank.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())
