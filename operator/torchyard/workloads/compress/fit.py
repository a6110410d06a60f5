"""The one training loop compression uses (fine-tuning after pruning, distillation),
and the losses it is driven with."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from torchyard.workloads.compress.evaluate import Adapter
from torchyard.workloads.datasets import UNLABELLED, Dataset

# loss(outputs of the model on the samples at index, index) -> scalar
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TRAIN_BATCH = 64


def steps_per_epoch(data: Dataset, batch_size: int = TRAIN_BATCH) -> int:
    return math.ceil(len(data) / batch_size)


def train(
    model: nn.Module,
    adapter: Adapter,
    data: Dataset,
    loss: Loss,
    *,
    steps: int,
    learning_rate: float,
    batch_size: int = TRAIN_BATCH,
    seed: int = 0,
) -> nn.Module:
    """`steps` Adam steps over shuffled mini-batches of `data` (seeded: reproducible)."""
    torch.manual_seed(seed)
    order_seed = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=learning_rate
    )
    model.train()
    done = 0
    while done < steps:
        order = torch.randperm(len(data), generator=order_seed)
        for start in range(0, len(data), batch_size):
            index = order[start : start + batch_size]
            value = loss(adapter.outputs(model, adapter.batch(data, index)), index)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return model.eval()


def label_loss(labels: torch.Tensor) -> Loss:
    """Cross-entropy on the labelled samples (label -1 marks an unlabelled one)."""

    def loss(outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        targets = labels[index]
        known = targets != UNLABELLED
        if not known.any():
            return outputs.sum() * 0.0  # nothing to learn from this batch
        return F.cross_entropy(outputs[known], targets[known])

    return loss


def match_loss(targets: torch.Tensor) -> Loss:
    """1 - cosine to a reference model's outputs: learning without labels."""

    def loss(outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return (1 - F.cosine_similarity(outputs, targets[index], dim=1)).mean()

    return loss


def distillation_loss(
    teacher_logits: torch.Tensor, labels: torch.Tensor | None, temperature: float, alpha: float
) -> Loss:
    """Hinton et al.: alpha * T^2 * KL(teacher || student at temperature T) plus
    (1 - alpha) * cross-entropy on the samples that have labels."""
    hard = label_loss(labels) if labels is not None else None

    def loss(outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        soft = F.kl_div(
            F.log_softmax(outputs / temperature, dim=1),
            F.softmax(teacher_logits[index] / temperature, dim=1),
            reduction="batchmean",
        ) * (temperature**2)
        if hard is None:
            return soft
        return alpha * soft + (1 - alpha) * hard(outputs, index)

    return loss
