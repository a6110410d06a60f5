"""Folding BatchNorm into the convolution before it, so int8 conv sees one linear layer.

In eval mode a BatchNorm2d after a Conv2d is a per-channel affine map of the conv's
output, so it can be absorbed exactly into the conv's weight and bias:

    W' = W * g / sqrt(var + eps)        b' = (b - mean) * g / sqrt(var + eps) + beta

Quantizing the folded conv quantizes what the model computes; quantizing the conv alone
would leave BN to rescale (and magnify) its rounding error per channel. The BN becomes
nn.Identity, so the module names and everything downstream stay as they were.

Pairs are found structurally, without running the model: consecutive (Conv2d,
BatchNorm2d) children of an nn.Sequential (nested ones too), where a Sequential's order
is its data flow. A layer reused in several places is left alone (folding it would
change its other uses), and so is a subclass of either (it may compute otherwise).

The artifact records the folded BatchNorm names (transform `fold_batchnorm`, before
`quantize`); a replay makes the same structure and the state fills the weights.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from torchyard.workloads.artifacts import transform
from torchyard.workloads.compress.modules import get_module, set_module


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """In place: fold every BatchNorm2d that directly follows a Conv2d into that conv
    (eval semantics: running statistics); return the model and the BN names folded."""
    folded = []
    for conv, norm_name, norm in conv_batchnorm_pairs(model):
        _fold(conv, norm)
        set_module(model, norm_name, nn.Identity())
        folded.append(norm_name)
    return model, folded


def conv_batchnorm_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, str, nn.BatchNorm2d]]:
    """(conv, BN name, BN) for each foldable pair, in module order."""
    uses = Counter(id(module) for _, module in model.named_modules(remove_duplicate=False))
    pairs = []
    for parent_name, conv, norm_name, norm in _consecutive(model):
        # Exact types: subclasses may compute otherwise (weight-standardized convs,
        # BatchNorm with a built-in activation), and folding would silently drop that.
        if type(conv) is not nn.Conv2d or type(norm) is not nn.BatchNorm2d:
            continue
        if uses[id(conv)] > 1 or uses[id(norm)] > 1:
            continue
        if norm.running_mean is None or norm.running_var is None:
            continue  # track_running_stats=False: it normalizes with batch statistics
        if norm.num_features != conv.out_channels or norm.training:
            continue  # in training, BatchNorm normalizes with the batch's statistics
        pairs.append((conv, _join(parent_name, norm_name), norm))
    return pairs


def _consecutive(model: nn.Module) -> list[tuple[str, nn.Module, str, nn.Module]]:
    """(Sequential's name, child, next child's name, next child) for every Sequential."""
    found = []
    for parent_name, parent in model.named_modules():
        if (
            not isinstance(parent, nn.Sequential)
            or type(parent).forward is not nn.Sequential.forward
        ):
            continue  # a subclass's own forward may not run its children in order
        for (_, first), (second_name, second) in pairwise(parent.named_children()):
            found.append((parent_name, first, second_name, second))
    return found


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


@torch.no_grad()
def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    # float64 so that the folded layer matches conv-then-BN to float32 rounding.
    assert norm.running_mean is not None and norm.running_var is not None
    mean, var = norm.running_mean.double(), norm.running_var.double()
    gamma = norm.weight.double() if norm.weight is not None else torch.ones_like(mean)
    beta = norm.bias.double() if norm.bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + norm.eps)
    weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(mean)
    dtype = conv.weight.dtype
    conv.weight.copy_(weight.to(dtype))
    folded_bias = ((bias - mean) * scale + beta).to(dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(folded_bias, requires_grad=conv.weight.requires_grad)
    else:
        conv.bias.copy_(folded_bias)


def fold_record(names: list[str]) -> list[dict[str, Any]]:
    """The artifact's transform record for the BatchNorms folded (none when none were)."""
    return [{"name": "fold_batchnorm", "batchnorms": names}] if names else []


@transform("fold_batchnorm")
def _replay_fold(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    """The folded structure on a freshly built model: BNs become Identity and their convs
    get a bias (of zeros: the saved state brings the folded values)."""
    names = params.get("batchnorms")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError("batchnorms must be a list of module names")
    for name in names:
        conv = _preceding_conv(model, name)
        if conv.bias is None:
            zeros = torch.zeros_like(conv.weight[:, 0, 0, 0])
            conv.bias = nn.Parameter(zeros, requires_grad=conv.weight.requires_grad)
        set_module(model, name, nn.Identity())
    return model


def _preceding_conv(model: nn.Module, norm_name: str) -> nn.Conv2d:
    parent_name, _, child = norm_name.rpartition(".")
    parent = get_module(model, parent_name)
    names = [name for name, _ in parent.named_children()]
    if not isinstance(parent, nn.Sequential) or child not in names:
        raise ValueError(f"{norm_name!r} is not a child of an nn.Sequential")
    if not isinstance(get_module(model, norm_name), nn.BatchNorm2d):
        raise ValueError(f"{norm_name!r} is not a BatchNorm2d")
    position = names.index(child)
    conv = parent[position - 1] if position > 0 else None
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"{norm_name!r} does not follow a Conv2d")
    return conv
