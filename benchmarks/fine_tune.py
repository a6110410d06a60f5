"""Fine-tuning MiniLM on text against its frozen encoder, in the same invocation.

Both runs are the real workload (`torchyard workload train` under torch's elastic
launcher, as local "pods": torchyard.workloads.train.local) with the same spec, data,
seed and schedule: builtin://reviews written as JSON Lines (train split) and CSV
(test split, the held-out set evaluated after every epoch), task classification
(positive: 4-5 stars, negative: 1-2). The baseline trains only the linear head on the
frozen encoder's mean-pooled embeddings (task.freezeEncoder, a linear probe); the
fine-tune trains the encoder too. Printed: the held-out accuracy after each epoch, the
best, samples/s of the training loop, and the wall time of each run.

    .venv/bin/python benchmarks/fine_tune.py                   # 2 pods x 1 rank, 3 epochs
    .venv/bin/python benchmarks/fine_tune.py --replicas 1 --epochs 4 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from torchyard.api.training import TrainingDataset
from torchyard.workloads.records import open_records, write_records
from torchyard.workloads.train.local import run_replicas


def write_data(root: Path) -> tuple[str, str]:
    train = open_records(TrainingDataset(uri="builtin://reviews", split="train"))
    test = open_records(TrainingDataset(uri="builtin://reviews", split="test"))
    write_records(root / "train.jsonl", train, "jsonl")
    write_records(root / "test.csv", test, "csv")
    return f"file://{root}/train.jsonl", f"file://{root}/test.csv"


def spec(args: argparse.Namespace, root: Path, data: tuple[str, str], frozen: bool) -> dict:
    return {
        "parallelism": {"mode": args.mode, "replicas": args.replicas},
        "model": {"uri": "builtin://all-minilm-l6-v2", "format": "huggingface"},
        "task": {"type": "classification", "freezeEncoder": frozen, "maxLength": 128},
        "dataset": {"uri": data[0]},
        "evaluation": {"dataset": {"uri": data[1]}},
        "hyperparameters": {
            "epochs": args.epochs,
            "globalBatchSize": args.batch,
            "gradientAccumulationSteps": args.accumulation,
            # A linear probe needs a larger step than the encoder tolerates.
            "learningRate": args.probe_lr if frozen else args.lr,
            "precision": args.precision,
            "seed": args.seed,
        },
        "output": {"uri": f"file://{root}/model"},
    }


def run(args: argparse.Namespace, root: Path, data: tuple[str, str], frozen: bool) -> dict:
    started = time.perf_counter()
    env = {"OMP_NUM_THREADS": str(args.threads), "TORCHYARD_RENDEZVOUS_TIMEOUT": "120"}
    replicas = run_replicas(spec(args, root, data, frozen), root, env=env, timeout=3600)
    wall = time.perf_counter() - started
    if any(r.returncode != 0 for r in replicas):
        raise SystemExit("\n".join(r.log[-3000:] for r in replicas))
    result: dict[str, Any] = replicas[0].result()
    return {**result, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--mode", choices=["data", "gradient"], default="data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32, help="global batch size")
    parser.add_argument("--accumulation", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-5, help="fine-tune learning rate")
    parser.add_argument("--probe-lr", type=float, default=1e-2, help="frozen encoder's")
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    rows = {}
    with tempfile.TemporaryDirectory(prefix="torchyard-fine-tune-") as tmp:
        data = write_data(Path(tmp))
        for name, frozen in (("frozen encoder (linear probe)", True), ("fine-tuned", False)):
            root = Path(tmp) / ("frozen" if frozen else "tuned")
            root.mkdir()
            rows[name] = run(args, root, data, frozen)

    print(
        f"MiniLM (all-MiniLM-L6-v2) on builtin://reviews: 512 train, 128 held out; "
        f"{args.replicas} pod(s) x 1 rank, mode {args.mode}, {args.epochs} epochs, "
        f"global batch {args.batch}, precision {args.precision}"
    )
    print(
        f"{'run':32} {'held-out accuracy by epoch':32} {'best':>6} {'samples/s':>10} {'wall s':>7}"
    )
    for name, result in rows.items():
        history = result["evaluation"]["history"]
        by_epoch = " ".join(f"{e['metrics']['accuracy']:.3f}" for e in history)
        best = max(e["metrics"]["accuracy"] for e in history)
        print(
            f"{name:32} {by_epoch:32} {best:6.3f} {result['samplesPerSecond']:10.1f} "
            f"{result['wall']:7.0f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
