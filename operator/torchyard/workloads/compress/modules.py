"""Walking and measuring a model: named submodules, parameter counts, sparsity, size."""

from __future__ import annotations

import torch
from torch import nn

from torchyard.workloads.compress.qconv import QUANTIZED_CONV
from torchyard.workloads.compress.qmodules import QUANTIZED

# Layers whose weight matrices pruning and sparsity figures are about.
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def get_module(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name) if name else model


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(get_module(model, parent), child, module)


def parameter_count(model: nn.Module) -> int:
    """Weights and biases, whether float parameters or int8 buffers of quantized layers."""
    count = sum(p.numel() for p in model.parameters())
    return count + sum(
        m.parameter_count() for m in model.modules() if isinstance(m, QUANTIZED + QUANTIZED_CONV)
    )


def weight_matrices(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight of every Linear/Conv layer (float or int8), by module name."""
    matrices = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, WEIGHTED + QUANTIZED + QUANTIZED_CONV) and isinstance(
            weight, torch.Tensor
        ):
            matrices[name] = weight
    return matrices


def sparsity(model: nn.Module) -> tuple[float, dict[str, float]]:
    """Fraction of zero weights overall and per layer (Linear, Conv and their int8 forms)."""
    per_layer, zeros, total = {}, 0, 0
    for name, weight in weight_matrices(model).items():
        layer_zeros = int((weight == 0).sum())
        per_layer[name] = round(layer_zeros / weight.numel(), 4)
        zeros, total = zeros + layer_zeros, total + weight.numel()
    return (zeros / total if total else 0.0), per_layer


def state_bytes(model: nn.Module) -> int:
    """Size of the model's weights serialised as safetensors (what the artifact stores)."""
    from safetensors.torch import save

    from torchyard.workloads.artifacts import state_tensors

    return len(save(state_tensors(model)))
