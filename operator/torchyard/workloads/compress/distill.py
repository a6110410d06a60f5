"""Knowledge distillation: a smaller student learns to imitate the teacher.

The student is given as its own model, or derived from the teacher by a StudentRule:
fewer layers (hidden blocks of an nn.Sequential, or transformer layers of a BERT-style
encoder, taken evenly so the student starts from the teacher's own weights) and less
width (the teacher's least important hidden units removed, as structured pruning
does). Classifiers learn from the teacher's softened logits plus the labels that exist
(label -1 marks a sample without one: a few labels and a larger unlabelled transfer set
is where soft targets pay); encoders learn to reproduce the teacher's embeddings.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from torchyard.api.compression import DistillSpec, StudentRule
from torchyard.workloads.artifacts import transform
from torchyard.workloads.compress.evaluate import Adapter
from torchyard.workloads.compress.fit import distillation_loss, match_loss, steps_per_epoch, train
from torchyard.workloads.compress.modules import get_module
from torchyard.workloads.compress.prune import PASS_THROUGH, unit_groups
from torchyard.workloads.datasets import Dataset, TensorData


def derive_student(teacher: nn.Module, rule: StudentRule) -> tuple[nn.Module, list[dict[str, Any]]]:
    """A copy of the teacher with fewer layers and less width, and the transforms that
    rebuild its structure."""
    student = copy.deepcopy(teacher)
    transforms: list[dict[str, Any]] = []
    if rule.layer_fraction < 1:
        record = {"name": "drop_layers", **_layers_to_keep(student, rule.layer_fraction)}
        drop_layers(student, record)
        transforms.append(record)
    if rule.width_fraction < 1:
        groups = unit_groups(student, "neurons")
        if not groups:
            raise ValueError("studentRule.widthFraction: the model has no hidden units to remove")
        shrunk = [group.shrink(student, rule.width_fraction) for group in groups]
        transforms.append({"name": "prune_units", "groups": shrunk})
    return student, transforms


def _layers_to_keep(model: nn.Module, fraction: float) -> dict[str, Any]:
    encoder = _encoder_layers(model)
    if encoder is not None:
        name, layers = encoder
        count = max(1, round(len(layers) * fraction))
        # Evenly spaced, as DistilBERT takes every other layer of BERT.
        return {"encoder": name, "keep": [i * len(layers) // count for i in range(count)]}
    if isinstance(model, nn.Sequential):
        hidden = _hidden_linears(model)
        count = max(1, round(len(hidden) * fraction))
        return {"sequential": "", "keep": hidden[:count]}
    raise ValueError(
        "studentRule.layerFraction supports nn.Sequential models and BERT-style encoders; "
        "give the student as its own model source instead"
    )


def _hidden_linears(sequential: nn.Sequential) -> list[str]:
    """Names of the Linear layers before the last one (the output layer)."""
    linears = [name for name, layer in sequential.named_children() if isinstance(layer, nn.Linear)]
    return linears[:-1]


def _encoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    return ("encoder.layer", layers) if isinstance(layers, nn.ModuleList) else None


@transform("drop_layers")
def drop_layers(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    """Keep only the listed transformer layers, or the listed hidden blocks of a
    Sequential (a Linear with the unit-wise modules after it); a Linear whose input no
    longer matches is rebuilt (it is trained, or its weights come from the artifact)."""
    if "encoder" in params:
        layers = get_module(model, params["encoder"])
        assert isinstance(layers, nn.ModuleList)
        kept = [layers[i] for i in params["keep"]]
        _refill(layers, kept)
        config = getattr(model, "config", None)
        if config is not None:
            config.num_hidden_layers = len(kept)
        return model
    sequential = get_module(model, params["sequential"])
    assert isinstance(sequential, nn.Sequential)
    children = list(sequential.named_children())
    hidden = set(_hidden_linears(sequential))
    kept_modules: list[nn.Module] = []
    dropping = False
    for name, layer in children:
        if name in hidden:
            dropping = name not in params["keep"]
        elif not isinstance(layer, PASS_THROUGH):
            dropping = False
        if not dropping:
            kept_modules.append(layer)
    width = None
    for position, layer in enumerate(kept_modules):
        if isinstance(layer, nn.Linear):
            if width is not None and layer.in_features != width:
                kept_modules[position] = nn.Linear(
                    width, layer.out_features, layer.bias is not None
                )
            width = kept_modules[position].out_features
    _refill(sequential, kept_modules)
    return model


def _refill(container: nn.Sequential | nn.ModuleList, modules: list[nn.Module]) -> None:
    """Replace a container's children in place (it may be the model itself), renumbered."""
    del container[:]
    for module in modules:
        container.append(module)


def distill(
    teacher: nn.Module,
    student: nn.Module,
    spec: DistillSpec,
    adapter: Adapter,
    data: Dataset,
    classifier: bool,
    seed: int = 0,
) -> nn.Module:
    """Train `student` (in place) on the transfer set `data` with the teacher's outputs."""
    targets = adapter.predict(teacher.eval(), data).detach()
    labels = data.labels if isinstance(data, TensorData) else None
    if classifier:
        loss = distillation_loss(targets, labels, spec.temperature, spec.alpha)
    else:
        loss = match_loss(targets)
    steps = spec.epochs * steps_per_epoch(data)
    return train(
        student, adapter, data, loss, steps=steps, learning_rate=spec.learning_rate, seed=seed
    )


def labelled_count(data: Dataset) -> int:
    if isinstance(data, TensorData) and data.labels is not None:
        return int((data.labels >= 0).sum())
    return 0
