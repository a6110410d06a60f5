"""What a training step minimises and what an evaluation measures, per kind of work.

An objective turns a batch (a dict of tensors: `features` and `labels` for tensor
classification, the tokenizer's output and the targets for a text task) into the summed
loss of its samples, and into summed evaluation figures. Sums, not means: a rank's share
of the global batch's mean loss is its sum over the global batch size, so shares of any
size (uneven ranks, accumulation steps) add up to the exact mean, and evaluation sums
all-reduce into the same metrics whatever the number of ranks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from torchyard.api.training import Hyperparameters

Batch = dict[str, torch.Tensor]

# Logit scale of the contrastive loss: cosine similarities (in [-1, 1]) times 20, as
# sentence-transformers' MultipleNegativesRankingLoss uses.
CONTRASTIVE_SCALE = 20.0
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def use_bf16(hp: Hyperparameters, device: torch.device) -> bool:
    """Whether forward passes run under bf16 autocast: precision bf16, or auto on a
    device where it trains faster: a GPU with bf16, a CPU with AMX. AVX512-BF16 alone
    trained MiniLM slower than fp32 (26.2 against 32.9 samples/s, benchmarks/
    fine_tune.py), and without either bf16 is emulated."""
    if hp.precision != "auto":
        return hp.precision == "bf16"
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    from torchyard.workloads.compress.qmodules import cpu_flags

    return "amx_bf16" in cpu_flags()


class Objective(ABC):
    """A loss to minimise and the metrics to report on held-out data."""

    metric: str
    """The metric that decides the best epoch and the early stop."""
    higher_is_better = True
    sums: tuple[str, ...] = ("count", "correct", "loss")
    """The keys of evaluation_sums, in the order the ranks add them up."""

    def __init__(self, device_type: str = "cpu", bf16: bool = False) -> None:
        self.device_type = device_type
        self.bf16 = bf16

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward pass's precision: bf16 autocast, or as the weights are (fp32)."""
        if not self.bf16:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    @abstractmethod
    def loss_sum(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        """The loss summed over the batch's samples (a float32 scalar)."""

    def mean_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mean loss of a pipeline's microbatch, from the last stage's output."""
        return nn.functional.cross_entropy(output.float(), target)

    @abstractmethod
    def evaluation_sums(self, module: nn.Module, batch: Batch) -> dict[str, float]:
        """Sums over the batch that `metrics` turns into figures, with `count`."""

    @abstractmethod
    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        """The figures of summed evaluation batches."""


class Classification(Objective):
    """Integer class labels: cross-entropy, accuracy."""

    metric = "accuracy"

    @abstractmethod
    def logits(self, module: nn.Module, batch: Batch) -> torch.Tensor: ...

    def loss_sum(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        with self.autocast():
            logits = self.logits(module, batch)
        return nn.functional.cross_entropy(logits.float(), batch["labels"], reduction="sum")

    def evaluation_sums(self, module: nn.Module, batch: Batch) -> dict[str, float]:
        with self.autocast():
            logits = self.logits(module, batch).float()
        return _classification_sums(logits, batch["labels"])

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        return _classification_metrics(sums)


class TensorClassification(Classification):
    """Feature tensors."""

    def logits(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return module(batch["features"])


def _classification_sums(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
    correct = (logits.argmax(dim=-1) == labels).sum()
    return {"count": float(len(labels)), "correct": float(correct), "loss": float(loss)}


def _classification_metrics(sums: dict[str, float]) -> dict[str, float]:
    count = max(sums["count"], 1.0)
    return {"accuracy": sums["correct"] / count, "loss": sums["loss"] / count}


def text_inputs(batch: Batch) -> Batch:
    return {key: batch[key] for key in TEXT_INPUTS if key in batch}


class TextClassification(Classification):
    """The tokenizer's output."""

    def logits(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return module(**text_inputs(batch))


class TextRegression(Objective):
    metric = "mse"
    higher_is_better = False
    sums = ("count", "squared", "absolute")

    def loss_sum(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        with self.autocast():
            predicted = module(**text_inputs(batch))
        return nn.functional.mse_loss(predicted.float()[:, 0], batch["labels"], reduction="sum")

    def mean_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output.float()[:, 0], target)

    def evaluation_sums(self, module: nn.Module, batch: Batch) -> dict[str, float]:
        with self.autocast():
            error = module(**text_inputs(batch)).float()[:, 0] - batch["labels"]
        return {
            "count": float(len(error)),
            "squared": float((error**2).sum()),
            "absolute": float(error.abs().sum()),
        }

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums["count"], 1.0)
        return {"mse": sums["squared"] / count, "mae": sums["absolute"] / count}


class TextEmbedding(Objective):
    """Pairs of texts (the batch's first half, and their partners in the second half,
    encoded in one forward pass): each text must be closer to its partner than to the
    other partners of its batch (in-batch negatives, as MultipleNegativesRankingLoss)."""

    metric = "accuracy"
    sums = ("count", "correct", "cosine")

    def _similarities(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        with self.autocast():
            embeddings = module(**text_inputs(batch)).float()
        texts, partners = embeddings.chunk(2)
        return texts @ partners.T

    def mean_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("embedding contrasts whole batches, not microbatches")

    def loss_sum(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        scores = self._similarities(module, batch) * CONTRASTIVE_SCALE
        targets = torch.arange(len(scores), device=scores.device)
        return nn.functional.cross_entropy(scores, targets, reduction="sum")

    def evaluation_sums(self, module: nn.Module, batch: Batch) -> dict[str, float]:
        scores = self._similarities(module, batch)
        targets = torch.arange(len(scores), device=scores.device)
        return {
            "count": float(len(scores)),
            "correct": float((scores.argmax(dim=-1) == targets).sum()),
            "cosine": float(scores.diagonal().sum()),
        }

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums["count"], 1.0)
        return {"accuracy": sums["correct"] / count, "meanCosine": sums["cosine"] / count}


TEXT_OBJECTIVES: dict[str, type[Objective]] = {
    "classification": TextClassification,
    "regression": TextRegression,
    "embedding": TextEmbedding,
}
