"""Pruning: zero the smallest weights, or physically remove whole units.

Unstructured pruning zeroes single weights by magnitude (per layer or ranked across the
model) with torch.nn.utils.prune; the masks stay on during fine-tuning (pruned weights
stay zero) and are then made permanent, so the saved state is the same dense size as
before — zeros alone make a model neither smaller nor faster (pytorch#58846).

Structured pruning removes units and slices the layers around them, so the model
really has fewer parameters and does less work:

- neurons: hidden units between two Linear layers (in an nn.Sequential, or the
  feed-forward block of a BERT-style transformer layer);
- channels: output channels of a Conv layer and the matching inputs of the next Conv
  (or of the Linear after a Flatten);
- heads: attention heads of BERT-style self-attention (query/key/value rows and the
  output projection's columns).

A unit's importance is the product of the norms of its incoming and outgoing weights
(a unit with small weights on either side contributes little). The artifact records how
many units each group keeps (transforms `prune_units`, `prune_heads`); a replay slices
the same layers to the same sizes and the state fills them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from torchyard.api.compression import PruneSpec
from torchyard.workloads.artifacts import transform
from torchyard.workloads.compress.modules import WEIGHTED, get_module, set_module

# Modules that act on each unit separately: a unit's removal passes straight through.
PASS_THROUGH = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.Hardswish,
    nn.Mish,
    nn.Dropout,
    nn.Identity,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
CONV = (nn.Conv1d, nn.Conv2d)


@dataclass
class Pruned:
    model: nn.Module
    transforms: list[dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)


def prune(
    model: nn.Module, spec: PruneSpec, fine_tune: Callable[[nn.Module], object] | None = None
) -> Pruned:
    """Prune a copy of `model`; `fine_tune` trains it in place after pruning (with the
    masks still on, for unstructured pruning: pruned weights stay zero)."""
    model = copy.deepcopy(model)
    if spec.kind == "unstructured":
        masked(model, spec)
        if fine_tune is not None:
            fine_tune(model)
        return Pruned(finalize(model), [], {"kind": "unstructured", "scope": spec.scope})
    if spec.target == "heads":
        kept = prune_heads(model, 1 - spec.sparsity)
        if not kept:
            raise ValueError("target heads: the model has no BERT-style self-attention")
        record: dict[str, Any] = {"name": "prune_heads", "kept": kept}
    else:
        groups = unit_groups(model, spec.target)
        if not groups:
            raise ValueError(
                f"target {spec.target}: found no prunable {spec.target} "
                "(Linear/Conv pairs in an nn.Sequential or BERT-style feed-forward blocks)"
            )
        shrunk = [group.shrink(model, 1 - spec.sparsity) for group in groups]
        record = {"name": "prune_units", "groups": shrunk}
    if fine_tune is not None:
        fine_tune(model)
    details = {"kind": "structured", "target": spec.target, "kept": _kept(record)}
    return Pruned(model, [record], details)


def _kept(record: dict[str, Any]) -> dict[str, Any]:
    if record["name"] == "prune_heads":
        return dict(record["kept"])
    return {group["producer"]: group["kept"] for group in record["groups"]}


# -- unstructured -------------------------------------------------------------------------


def masked(model: nn.Module, spec: PruneSpec) -> nn.Module:
    """Attach magnitude masks in place (weights under a mask stay zero while training)."""
    targets = [(m, "weight") for m in model.modules() if isinstance(m, WEIGHTED)]
    if not targets:
        raise ValueError("unstructured pruning found no Linear or Conv layers")
    if spec.scope == "global":
        torch_prune.global_unstructured(
            targets, pruning_method=torch_prune.L1Unstructured, amount=spec.sparsity
        )
    else:
        for module, name in targets:
            torch_prune.l1_unstructured(module, name, amount=spec.sparsity)
    return model


def finalize(model: nn.Module) -> nn.Module:
    """Make masks permanent: drop weight_orig/weight_mask, keep the zeroed weight."""
    for module in model.modules():
        if torch_prune.is_pruned(module) and isinstance(module, WEIGHTED):
            torch_prune.remove(module, "weight")
    return model


# -- structured: neurons and channels -----------------------------------------------------


@dataclass
class UnitGroup:
    """Units produced by one layer and consumed by the next, with what lies between."""

    producer: str
    consumer: str
    norms: list[str]
    spatial: int = 1  # consumer inputs per unit (a Flatten between Conv and Linear)

    def units(self, model: nn.Module) -> int:
        return int(get_module(model, self.producer).weight.shape[0])

    def importance(self, model: nn.Module) -> torch.Tensor:
        produced = get_module(model, self.producer).weight.detach()
        consumed = get_module(model, self.consumer).weight.detach()
        incoming = produced.reshape(produced.shape[0], -1).norm(dim=1)
        outgoing = consumed.transpose(0, 1).reshape(self.units(model), -1).norm(dim=1)
        return incoming * outgoing

    def shrink(self, model: nn.Module, keep_fraction: float) -> dict[str, Any]:
        """Keep the most important units; return the record a replay needs."""
        kept = max(1, round(self.units(model) * keep_fraction))
        index = self.importance(model).topk(kept).indices.sort().values
        self.slice(model, index)
        return {
            "producer": self.producer,
            "consumer": self.consumer,
            "norms": self.norms,
            "spatial": self.spatial,
            "kept": kept,
        }

    def slice(self, model: nn.Module, index: torch.Tensor) -> None:
        set_module(model, self.producer, _slice(get_module(model, self.producer), index, dim=0))
        for name in self.norms:
            set_module(model, name, _slice_norm(get_module(model, name), index))
        columns = index
        if self.spatial > 1:
            columns = (index[:, None] * self.spatial + torch.arange(self.spatial)).flatten()
        set_module(model, self.consumer, _slice(get_module(model, self.consumer), columns, dim=1))


def unit_groups(model: nn.Module, target: str) -> list[UnitGroup]:
    """Prunable groups: neurons (Linear producers) or channels (Conv producers)."""
    producers = (nn.Linear,) if target == "neurons" else CONV
    groups = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            groups += _sequential_groups(name, module, producers)
        elif target == "neurons":
            groups += _feed_forward_group(name, module)
    return groups


def _sequential_groups(
    prefix: str, sequential: nn.Sequential, producers: tuple[type, ...]
) -> list[UnitGroup]:
    children = list(sequential.named_children())
    groups = []
    for position, (name, layer) in enumerate(children):
        if not isinstance(layer, producers):
            continue
        norms: list[str] = []
        flattened = False
        for next_name, following in children[position + 1 :]:
            full = f"{prefix}.{next_name}" if prefix else next_name
            if isinstance(following, NORMS):
                norms.append(full)
            elif isinstance(following, nn.Flatten) and isinstance(layer, CONV):
                flattened = True
            elif isinstance(following, (nn.Linear, *CONV)):
                consumer_in = following.weight.shape[1]
                units = layer.weight.shape[0]
                if consumer_in % units == 0 and (flattened or consumer_in == units):
                    producer = f"{prefix}.{name}" if prefix else name
                    groups.append(UnitGroup(producer, full, norms, consumer_in // units))
                break
            elif not isinstance(following, PASS_THROUGH):
                break  # something that mixes units: not safe to slice through
    return groups


def _feed_forward_group(name: str, module: nn.Module) -> list[UnitGroup]:
    """BERT-style layer: intermediate.dense -> activation -> output.dense."""
    intermediate = getattr(getattr(module, "intermediate", None), "dense", None)
    output = getattr(getattr(module, "output", None), "dense", None)
    if isinstance(intermediate, nn.Linear) and isinstance(output, nn.Linear):
        return [UnitGroup(f"{name}.intermediate.dense", f"{name}.output.dense", [])]
    return []


def _slice(layer: nn.Module, index: torch.Tensor, dim: int) -> nn.Module:
    """A copy of a Linear/Conv layer keeping only `index` along dim 0 (outputs) or 1."""
    layer = copy.deepcopy(layer)
    layer.weight = nn.Parameter(layer.weight.detach().index_select(dim, index).clone())
    if dim == 0 and layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.detach()[index].clone())
    size = int(index.numel())
    if isinstance(layer, nn.Linear):
        if dim == 0:
            layer.out_features = size
        else:
            layer.in_features = size
    elif dim == 0:
        layer.out_channels = size
    else:
        layer.in_channels = size
    return layer


def _slice_norm(norm: nn.Module, index: torch.Tensor) -> nn.Module:
    norm = copy.deepcopy(norm)
    for name in ("weight", "bias"):
        value = getattr(norm, name)
        if value is not None:
            setattr(norm, name, nn.Parameter(value.detach()[index].clone()))
    for name in ("running_mean", "running_var"):
        value = getattr(norm, name)
        if value is not None:
            setattr(norm, name, value[index].clone())
    norm.num_features = int(index.numel())
    return norm


@transform("prune_units")
def _replay_units(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    for group in params["groups"]:
        unit_group = UnitGroup(
            group["producer"], group["consumer"], group["norms"], group["spatial"]
        )
        unit_group.slice(model, torch.arange(group["kept"]))
    return model


# -- structured: attention heads ----------------------------------------------------------


def attention_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """BERT-style attention: a module with `.self` (query/key/value) and `.output.dense`."""
    found = {}
    for name, module in model.named_modules():
        attention = getattr(module, "self", None)
        output = getattr(getattr(module, "output", None), "dense", None)
        if (
            isinstance(output, nn.Linear)
            and all(
                isinstance(getattr(attention, p, None), nn.Linear)
                for p in ("query", "key", "value")
            )
            and hasattr(attention, "attention_head_size")
        ):
            found[name] = module
    return found


def prune_heads(model: nn.Module, keep_fraction: float) -> dict[str, int]:
    """Keep the most important heads of every attention block; return heads kept per block."""
    kept = {}
    for name, block in attention_blocks(model).items():
        attention, size = block.self, block.self.attention_head_size
        heads = attention.query.out_features // size
        value = attention.value.weight.detach().reshape(heads, -1).norm(dim=1)
        output = block.output.dense.weight.detach().reshape(-1, heads, size).transpose(0, 1)
        importance = value * output.reshape(heads, -1).norm(dim=1)
        keep = max(1, round(heads * keep_fraction))
        _slice_heads(block, importance.topk(keep).indices.sort().values)
        kept[name] = keep
    return kept


def _slice_heads(block: nn.Module, heads: torch.Tensor) -> None:
    attention, size = block.self, block.self.attention_head_size
    rows = (heads[:, None] * size + torch.arange(size)).flatten()
    for projection in ("query", "key", "value"):
        setattr(attention, projection, _slice(getattr(attention, projection), rows, dim=0))
    block.output.dense = _slice(block.output.dense, rows, dim=1)
    # The forward pass reshapes with -1 heads; keep the bookkeeping attributes true.
    attention.num_attention_heads = int(heads.numel())
    attention.all_head_size = int(rows.numel())


@transform("prune_heads")
def _replay_heads(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    blocks = attention_blocks(model)
    for name, keep in params["kept"].items():
        _slice_heads(blocks[name], torch.arange(keep))
    return model
