"""Datasets a workload reads: bundled ones (offline) and tensor files at a URI."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import torch

from torchyard.api.common import DatasetSource
from torchyard.storage import StorageError, fetch

SPLIT_SEED = 0
TEST_FRACTION = 0.2
TABULAR = ("digits", "breast_cancer", "wine", "iris")


class DatasetError(RuntimeError):
    """The dataset cannot be read; permanent (retrying will not help)."""


@dataclass(frozen=True)
class TensorData:
    """Features and, for labelled data, integer class labels."""

    features: torch.Tensor
    labels: torch.Tensor | None
    classes: int | None = None

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def head(self, count: int | None) -> TensorData:
        if count is None:
            return self
        labels = None if self.labels is None else self.labels[:count]
        return TensorData(self.features[:count], labels, self.classes)


def load_dataset(source: DatasetSource) -> TensorData:
    """The split of a dataset that `source` names, at most `maxSamples` of it."""
    parsed = urlparse(source.uri)
    if parsed.scheme == "builtin":
        data = _builtin(parsed.netloc, source.split)
    else:
        data = _tensor_file(source.uri)
    return data.head(source.max_samples)


def _builtin(name: str, split: str) -> TensorData:
    if name not in TABULAR:
        raise DatasetError(f"builtin://{name} is not a tabular dataset of this worker")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    features = torch.tensor(bunch.data, dtype=torch.float32)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    # Standardise with the statistics of the whole set: the split is fixed, so every
    # job that names the same dataset sees the same numbers.
    features = (features - features.mean(0)) / features.std(0).clamp_min(1e-6)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    cut = int(len(labels) * (1 - TEST_FRACTION))
    chosen = {"train": order[:cut], "test": order[cut:], "all": order}[split]
    return TensorData(features[chosen], labels[chosen], int(labels.max()) + 1)


def _tensor_file(uri: str) -> TensorData:
    try:
        path = fetch(uri)
    except StorageError as error:
        raise DatasetError(str(error)) from None
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path))
    else:
        tensors = torch.load(str(path), map_location="cpu", weights_only=True)
    if "features" not in tensors:
        raise DatasetError(f"{uri}: a dataset file holds tensors 'features' and optional 'labels'")
    labels = tensors.get("labels")
    classes = int(labels.max()) + 1 if labels is not None else None
    return TensorData(tensors["features"].float(), labels, classes)
