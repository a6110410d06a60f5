"""Datasets a workload reads: bundled ones (offline) and tensor files at a URI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from torchyard.api.common import DatasetSource
from torchyard.storage import StorageError, fetch

SPLIT_SEED = 0
TEST_FRACTION = 0.2
TABULAR = ("digits", "breast_cancer", "wine", "iris")
TEXT = ("sentences", "varied-text", "reviews")
UNLABELLED = -1
"""Label of a sample without a label in a tensor file: distillation learns from it
through the teacher's soft targets only (a few labels plus a larger transfer set)."""


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
        return self if count is None else self.rows(0, count)

    def rows(self, start: int, stop: int) -> TensorData:
        labels = None if self.labels is None else self.labels[start:stop]
        return TensorData(self.features[start:stop], labels, self.classes)

    def keep_labels(self, per_class: int) -> TensorData:
        """The same samples with only the first `per_class` labels of each class kept,
        the rest marked UNLABELLED: a few labels and a larger unlabelled transfer set."""
        if self.labels is None:
            return self
        labels = self.labels.clone()
        for label in labels.unique():
            labels[(self.labels == label).nonzero().flatten()[per_class:]] = UNLABELLED
        return TensorData(self.features, labels, self.classes)

    def save(self, path: Path) -> None:
        """Write as a dataset file (safetensors: features, labels) that a URI can name."""
        from safetensors.torch import save_file

        tensors = {"features": self.features.contiguous()}
        if self.labels is not None:
            tensors["labels"] = self.labels.contiguous()
        save_file(tensors, str(path))


@dataclass(frozen=True)
class TextData:
    """Unlabelled text, one sample per string (the model's tokenizer turns it into ids)."""

    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, count: int | None) -> TextData:
        return self if count is None else self.rows(0, count)

    def rows(self, start: int, stop: int) -> TextData:
        return TextData(self.texts[start:stop])


Dataset = TensorData | TextData


def load_dataset(source: DatasetSource) -> Dataset:
    """The split of a dataset that `source` names, at most `maxSamples` of it."""
    parsed = urlparse(source.uri)
    data: Dataset
    if parsed.scheme == "builtin" and parsed.netloc in TEXT:
        data = _text(parsed.netloc, source.split)
    elif parsed.scheme == "builtin":
        data = _builtin(parsed.netloc, source.split)
    else:
        data = _tensor_file(source.uri)
    return data.head(source.max_samples)


def split_indices(count: int, split: str) -> torch.Tensor:
    """Indices of a fixed 80/20 split: every job that names a dataset sees the same."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED))
    cut = int(count * (1 - TEST_FRACTION))
    return {"train": order[:cut], "test": order[cut:], "all": order}[split]


def _text(name: str, split: str) -> TextData:
    from torchyard.workloads.text import SENTENCES
    from torchyard.workloads.varied_text import VARIED_TEXT

    if name == "reviews":
        from torchyard.workloads.reviews import REVIEWS

        corpus: tuple[str, ...] = tuple(text for _, _, text in REVIEWS)
    else:
        corpus = SENTENCES if name == "sentences" else VARIED_TEXT
    return TextData(tuple(corpus[int(index)] for index in split_indices(len(corpus), split)))


def _builtin(name: str, split: str) -> TensorData:
    if name not in TABULAR:
        raise DatasetError(f"builtin://{name} is not a dataset of this worker")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    features = torch.tensor(bunch.data, dtype=torch.float32)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    # Standardise with the statistics of the whole set: the split is fixed, so every
    # job that names the same dataset sees the same numbers.
    features = (features - features.mean(0)) / features.std(0).clamp_min(1e-6)
    chosen = split_indices(len(labels), split)
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
    if labels is not None:
        labels = labels.long()
    classes = int(labels.max()) + 1 if labels is not None and len(labels) else None
    return TensorData(tensors["features"].float(), labels, classes)
