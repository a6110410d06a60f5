"""Feeding a model its data and measuring it: metric, size, latency, sparsity.

An Adapter knows how a kind of model takes a dataset and what one output per sample is:
tensor models take feature rows and return logits or vectors; text encoders (Hugging
Face) take tokenized text and return mean-pooled sentence embeddings, as
sentence-transformers computes them for MiniLM.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchyard.api.compression import Figures
from torchyard.workloads.compress.modules import parameter_count, sparsity, state_bytes
from torchyard.workloads.datasets import Dataset, TensorData, TextData

Batch = torch.Tensor | dict[str, torch.Tensor]
BATCH_SIZE = 32
LATENCY_ROUNDS = 15
LATENCY_BUDGET_S = 5.0


class Adapter(ABC):
    """How one kind of model is fed a dataset, and its output per sample."""

    takes: type[TensorData] | type[TextData]
    """The kind of dataset the model reads."""

    @abstractmethod
    def batch(self, data: Dataset, index: torch.Tensor) -> Batch:
        """The model input for the samples at `index`."""

    @abstractmethod
    def outputs(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """One float32 vector per sample (logits or an embedding), with autograd."""

    def batches(self, data: Dataset, size: int = BATCH_SIZE) -> Iterator[Batch]:
        for start in range(0, len(data), size):
            yield self.batch(data, torch.arange(start, min(start + size, len(data))))

    def predict(self, model: nn.Module, data: Dataset) -> torch.Tensor:
        """Outputs for the whole dataset, without autograd."""
        with torch.inference_mode():
            return torch.cat([self.outputs(model, batch) for batch in self.batches(data)])


class TensorAdapter(Adapter):
    takes = TensorData

    def batch(self, data: Dataset, index: torch.Tensor) -> Batch:
        if not isinstance(data, TensorData):
            raise TypeError("this model takes tensors; the dataset is text")
        return data.features[index]

    def outputs(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        assert isinstance(batch, torch.Tensor)
        return model(batch).float()


class TextAdapter(Adapter):
    takes = TextData

    def __init__(self, tokenizer_dir: Path, max_length: int = 128) -> None:
        from torchyard.workloads.textmodels import load_tokenizer

        self.tokenizer: Any = load_tokenizer(tokenizer_dir)
        self.max_length = max_length

    def batch(self, data: Dataset, index: torch.Tensor) -> Batch:
        if not isinstance(data, TextData):
            raise TypeError("this model takes text; the dataset is tensors")
        texts = [data.texts[int(i)] for i in index]
        from torchyard.workloads.textmodels import tokenize

        return dict(tokenize(self.tokenizer, texts, self.max_length))

    def outputs(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        assert isinstance(batch, dict)
        from torchyard.workloads.textmodels import TextTaskModel, mean_pool

        if isinstance(model, TextTaskModel):
            # A fine-tuned model: what it answers (class logits, the number, or the
            # embedding) is what compression must keep.
            return model(**batch).float()
        return mean_pool(model(**batch)[0].float(), batch["attention_mask"])


def accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    return float((outputs.argmax(dim=1) == labels).float().mean())


def cosines(outputs: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(outputs.float(), reference.float(), dim=1)


@dataclass(frozen=True)
class Quality:
    """The evaluation metric of one model, and the outputs it was computed from."""

    metric: float
    outputs: torch.Tensor
    min_cosine: float | None = None


def quality(
    model: nn.Module,
    adapter: Adapter,
    data: Dataset,
    metric: str,
    reference: torch.Tensor | None = None,
) -> Quality:
    """accuracy against the labels, or mean cosine of outputs against `reference`
    (the original model's outputs; the original itself scores 1.0)."""
    outputs = adapter.predict(model, data)
    if metric == "accuracy":
        if not isinstance(data, TensorData) or data.labels is None:
            raise ValueError("metric accuracy needs a labelled dataset")
        return Quality(accuracy(outputs, data.labels), outputs)
    similarity = cosines(outputs, outputs if reference is None else reference)
    return Quality(float(similarity.mean()), outputs, float(similarity.min()))


def median_latencies_ms(
    models: Sequence[nn.Module],
    adapter: Adapter,
    batch: Batch,
    rounds: int = LATENCY_ROUNDS,
    budget_s: float = LATENCY_BUDGET_S,
) -> list[float]:
    """Median wall time of one forward pass on `batch`, per model, in milliseconds.

    The models take turns (one pass each per round), so load from other processes on a
    shared machine falls on all of them alike and the ratios stay honest."""
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for model in models:
            adapter.outputs(model, batch)  # lazy kernel packing, allocator warm-up
        deadline = time.perf_counter() + budget_s
        for done in range(rounds):
            if done >= 3 and time.perf_counter() > deadline:
                break
            for model, record in zip(models, times, strict=True):
                start = time.perf_counter()
                adapter.outputs(model, batch)
                record.append((time.perf_counter() - start) * 1000)
    return [statistics.median(record) for record in times]


def figures(model: nn.Module, latency_ms: float | None, metric: float | None) -> Figures:
    return Figures(
        parameters=parameter_count(model),
        bytes=state_bytes(model),
        latency_ms=None if latency_ms is None else round(latency_ms, 3),
        metric=None if metric is None else round(metric, 6),
        sparsity=round(sparsity(model)[0], 6),
    )


def compute_threads() -> int:
    """Threads for torch: OMP_NUM_THREADS when set (an explicit choice), else the CPUs this
    process may use: the cgroup's CPU limit (a pod's limits.cpu) when there is one, else
    the CPUs it is scheduled on. Latency is measured with that many threads."""
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus
