"""Model factories that ship with the worker image, and loading a ModelSource."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchyard.api.common import ModelSource
from torchyard.factories import allowed_factories, check_factory
from torchyard.storage import StorageError, fetch, verify


class ModelLoadError(RuntimeError):
    """The model cannot be loaded; permanent (retrying will not help)."""


def mlp(
    in_features: int = 64, hidden: tuple[int, ...] = (256, 128), classes: int = 10
) -> nn.Module:
    """A classifier for flat feature vectors (defaults fit scikit-learn's digits)."""
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def cnn(channels: tuple[int, ...] = (16, 32), classes: int = 10, side: int = 8) -> nn.Module:
    """A small convolutional classifier of square one-channel images given as flat rows
    (defaults fit scikit-learn's 8x8 digits)."""
    layers: list[nn.Module] = [nn.Unflatten(1, (1, side, side))]
    width = 1
    for size in channels:
        layers += [nn.Conv2d(width, size, 3, padding=1), nn.BatchNorm2d(size), nn.ReLU()]
        width = size
    layers += [nn.Flatten(), nn.Linear(width * side * side, classes)]
    return nn.Sequential(*layers)


class SequenceClassifier(nn.Module):
    """An LSTM over the rows of a flat input (digits: 8 steps of 8 pixels), classified
    from its last output."""

    def __init__(self, steps: int, features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.steps, self.features = steps, features
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(x.reshape(-1, self.steps, self.features))
        return self.head(output[:, -1])


def lstm_classifier(
    steps: int = 8, features: int = 8, hidden: int = 32, classes: int = 10
) -> nn.Module:
    """A recurrent classifier (defaults fit scikit-learn's digits read row by row)."""
    return SequenceClassifier(steps, features, hidden, classes)


def resolve_factory(factory: str) -> Any:
    """'package.module:function' -> the function; raises FactoryNotAllowed, before its
    module is imported, unless torchyard.factories allows it."""
    try:
        allowed = allowed_factories()
    except ValueError as error:
        raise ModelLoadError(str(error)) from None
    check_factory(factory, allowed)
    module_name, _, attribute = factory.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ModelLoadError(f"factory {factory!r} cannot be imported: {error}") from None


def build(factory: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    function = resolve_factory(factory)
    try:
        model = function(**(kwargs or {}))
    except Exception as error:  # the factory's own failure: retrying will not help
        raise ModelLoadError(
            f"factory {factory!r} failed with kwargs {kwargs or {}}: {type(error).__name__}: "
            f"{error}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"factory {factory!r} returned {type(model).__name__}, not a Module")
    return model


def load_model(source: ModelSource) -> nn.Module:
    """Load the model a ModelSource names, verifying its digest when one is given; a
    source without a URI (a model trained from scratch) is its factory's fresh model."""
    if source.uri is None:
        assert source.factory is not None, "the API requires a factory without a uri"
        return build(source.factory)
    try:
        path = fetch(source.uri)
    except StorageError as error:
        raise ModelLoadError(str(error)) from None
    if source.digest:
        verify(path, source.digest)
    return load_path(path, source.format, source.factory)


def load_path(path: Path, format: str, factory: str | None = None) -> nn.Module:
    if format == "torchyard":
        from torchyard.workloads.artifacts import load_artifact

        return load_artifact(path)
    if format == "huggingface":
        return _load_huggingface(path)
    if format == "torchscript":
        file = path if path.is_file() else _single(path, ("*.pt", "*.ts", "*.pth"))
        return torch.jit.load(str(file), map_location="cpu")
    if factory is None:
        raise ModelLoadError(f"format {format} needs a factory ('module:function')")
    model = build(factory)
    state = load_weights(path, format)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ModelLoadError(f"weights at {path} do not fit {factory}: {error}") from None
    return model


def load_weights(path: Path, format: str) -> dict[str, torch.Tensor]:
    if format == "safetensors":
        from safetensors.torch import load_file

        file = path if path.is_file() else _single(path, ("*.safetensors",))
        return load_file(str(file))
    file = path if path.is_file() else _single(path, ("*.pt", "*.pth", "*.bin"))
    # weights_only refuses pickled code: a state_dict is tensors and nothing else.
    state: dict[str, torch.Tensor] = torch.load(str(file), map_location="cpu", weights_only=True)
    return state


def _load_huggingface(path: Path) -> nn.Module:
    from transformers import AutoModel

    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} is not a Hugging Face model directory (no config.json)")
    return AutoModel.from_pretrained(str(path), local_files_only=True).eval()


def _single(directory: Path, patterns: tuple[str, ...]) -> Path:
    found = sorted(p for pattern in patterns for p in directory.glob(pattern))
    if len(found) != 1:
        raise ModelLoadError(
            f"{directory}: expected one file matching {', '.join(patterns)}, found {len(found)}"
        )
    return found[0]
