"""Mode gradient shards gradients during backward: no rank ever holds the whole model's
gradients, and after backward a rank keeps exactly its slice's gradient.

A real 2-rank gloo group (torch.multiprocessing, file:// rendezvous) runs the real
strategy, ShardedGradients, on an MLP 64-(64x16)-10 (about 68k parameters, each at most
16 KiB) with 16 KiB buckets, so the gradients go out in many buckets, one of which
straddles the two ranks' slices. During backward, hooks registered before the
strategy's see each parameter's gradient arrive and record what the rank holds then.
The rank's slice of the summed gradient must equal that slice of the gradient of the
whole global batch computed in one process.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from torchyard.api.training import Hyperparameters
from torchyard.workloads.models import mlp
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.modes.gradient import ShardedGradients
from torchyard.workloads.train.objectives import TensorClassification

WORLD = 2
BATCH = 32
BUCKET_BYTES = 16 * 1024


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return mlp(in_features=64, hidden=(64,) * 16, classes=10)


def worker(rank: int, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=WORLD
    )
    try:
        place = Rank(
            rank=rank, world=WORLD, local_rank=rank, backend="gloo", device=torch.device("cpu")
        )
        generator = torch.Generator().manual_seed(1)
        features = torch.randn(BATCH, 64, generator=generator)
        labels = torch.randint(0, 10, (BATCH,), generator=generator)

        # The reference: the whole global batch's gradient, in one process.
        reference = model()
        batch = {"features": features, "labels": labels}
        (TensorClassification().loss_sum(reference, batch) / BATCH).backward()
        full = torch.cat([p.grad.reshape(-1) for p in reference.parameters()])

        net = model()
        params = list(net.parameters())
        seen: dict[str, int] = {"maxFullGrads": 0, "peakBytes": 0}
        strategy: ShardedGradients | None = None

        def watch(param: torch.Tensor) -> None:  # runs before the strategy's own hook
            held = sum(p.grad is not None for p in params)
            seen["maxFullGrads"] = max(seen["maxFullGrads"], held)
            if strategy is not None:
                seen["peakBytes"] = max(seen["peakBytes"], strategy.gradient_bytes())

        for param in params:
            param.register_post_accumulate_grad_hook(watch)
        hp = Hyperparameters(global_batch_size=BATCH, optimizer="adamw")
        strategy = ShardedGradients(
            net, hp, place, TensorClassification(), bucket_bytes=BUCKET_BYTES
        )

        after: dict[str, object] = {}
        step = strategy.optimizer.step

        def inspect_then_step(*args: object, **kwargs: object) -> object:
            assert strategy is not None and strategy.shard.grad is not None
            start = rank * strategy.shard_size
            expected = torch.zeros(strategy.shard_size)
            mine = full[start : start + strategy.shard_size]
            expected[: mine.numel()] = mine
            after.update(
                gradsLeft=sum(p.grad is not None for p in params),
                bytes=strategy.gradient_bytes(),
                maxError=(strategy.shard.grad - expected).abs().max().item(),
            )
            return step(*args, **kwargs)

        strategy.optimizer.step = inspect_then_step  # type: ignore[method-assign]
        local = strategy.local_samples(torch.arange(BATCH))
        strategy.train_step([{"features": features[local], "labels": labels[local]}])
        straddles = any(
            b.start // strategy.shard_size != (b.end - 1) // strategy.shard_size
            for b in strategy.buckets
        )
        result = {
            **seen,
            **after,
            "modelBytes": strategy.numel * 4,
            "shardBytes": strategy.shard_size * 4,
            "largestBytes": max(p.numel() for p in params) * 4,
            "buckets": len(strategy.buckets),
            "straddles": straddles,
        }
        Path(root, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_a_rank_never_holds_the_whole_models_gradients(tmp_path: Path):
    mp.spawn(worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    for rank in range(WORLD):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["buckets"] > 10 and got["straddles"], got
        # Each parameter's .grad is freed as soon as it is in a bucket: the watcher (which
        # runs first) only ever sees the one that has just arrived.
        assert got["maxFullGrads"] == 1, got
        # The slice's gradient, a bucket filling, one reducing, one parameter's .grad.
        bound = got["shardBytes"] + 3 * max(BUCKET_BYTES, got["largestBytes"])
        assert got["peakBytes"] <= bound, got
        assert got["peakBytes"] < 0.75 * got["modelBytes"], got
        # After backward: nothing but this rank's slice, which is about 1/N of the model.
        assert got["gradsLeft"] == 0, got
        assert got["bytes"] == got["shardBytes"], got
        assert abs(got["shardBytes"] - got["modelBytes"] / WORLD) <= 4 * WORLD, got
        assert got["maxError"] < 1e-6, got
