"""Digits classifiers for quality analysis's tests: trained here, the same weights
slightly perturbed (a faithful compression), and the same classifier over-pruned (a
degraded artifact that still answers every request), with a reference request of digits
rows for spec.rollout.analysis.quality."""

from __future__ import annotations

from typing import Any

import torch
from safetensors.torch import load_file

from tests.workload.compression import digits, digits_teacher
from torchyard.workloads.models import mlp

BASE = {"factory": "torchyard.workloads.models:mlp", "kwargs": {}}
"""The artifacts' factory: the default mlp, 64 features in, 10 classes out."""


def trained() -> torch.nn.Module:
    model = mlp()
    model.load_state_dict(load_file(str(digits_teacher())))
    return model.eval()


def over_pruned() -> torch.nn.Module:
    """97 % of each layer's weights removed by magnitude: it still answers, worse."""
    model = trained()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            weights = layer.weight.data
            cut = weights.abs().flatten().kthvalue(int(weights.numel() * 0.97)).values
            weights[weights.abs() <= cut] = 0.0
    return model


def perturbed() -> torch.nn.Module:
    """The same classifier with its weights moved by 0.1 % (a faithful compression)."""
    model = trained()
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1 + 0.001 * torch.randn_like(parameter))
    return model


def reference(metric: str, min_score: float, rows: int, **extra: Any) -> dict[str, Any]:
    """spec.rollout.analysis.quality with the first `rows` of the digits test split."""
    features = digits("test").features[:rows]
    tensor = {
        "name": "input",
        "datatype": "FP32",
        "shape": list(features.shape),
        "data": features.reshape(-1).tolist(),
    }
    return {"metric": metric, "minScore": min_score, "inputs": [tensor], **extra}
