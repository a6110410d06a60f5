"""Opening a ModelSource: the model, and how an artifact derived from it is rebuilt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from torchyard.api.common import ModelSource
from torchyard.factories import FactoryNotAllowed
from torchyard.storage import (
    DigestMismatch,
    StorageError,
    compute_digest,
    fetch,
    read_manifest,
    verify,
)
from torchyard.workloads.artifacts import BASE_DIR, base_files, load_artifact
from torchyard.workloads.models import ModelLoadError, load_path
from torchyard.workloads.report import PermanentError


@dataclass
class Source:
    """A loaded model and the base + transforms a torchyard artifact of it starts from."""

    model: nn.Module
    base: dict[str, Any]
    transforms: list[dict[str, Any]] = field(default_factory=list)
    base_files: Path | None = None
    """A Hugging Face directory whose config and tokenizer the artifact copies."""
    digest: str | None = None
    """sha256 of the content the model was loaded from (the artifact's lineage)."""

    @property
    def tokenizer_dir(self) -> Path | None:
        return self.base_files


def locate(source: ModelSource) -> Path:
    """The model's local path, its digest checked; a missing model fails permanently."""
    try:
        path = fetch(source.uri)
    except StorageError as error:
        raise PermanentError("ModelNotFound", str(error)) from None
    if source.digest:
        try:
            verify(path, source.digest)
        except DigestMismatch as error:
            raise PermanentError("DigestMismatch", str(error)) from None
    return path


def open_source(source: ModelSource) -> Source:
    path = locate(source)
    try:
        opened = _open(path, source)
    except FactoryNotAllowed as error:
        raise PermanentError(error.reason, str(error)) from None
    except ModelLoadError as error:
        raise PermanentError("InvalidModel", str(error)) from None
    opened.model.eval()  # a factory's module starts in training mode (dropout, batch norm)
    opened.digest = source.digest or compute_digest(path)
    return opened


def _open(path: Path, source: ModelSource) -> Source:
    if source.format == "torchscript":
        # A scripted module cannot have layers swapped or sliced, and the torchyard
        # format rebuilds models from Python code: compress the eager model instead.
        raise PermanentError(
            "UnsupportedModel",
            "a TorchScript model cannot be compressed (its layers cannot be replaced); "
            "give the model as format safetensors or state_dict with its factory, or as "
            "a Hugging Face directory",
        )
    if source.format == "huggingface":
        model = load_path(path, "huggingface")
        return Source(model, {"huggingface": BASE_DIR}, base_files=path)
    if source.format == "torchyard":
        manifest = read_manifest(path)
        model = load_artifact(path)
        base = manifest["base"]
        files = base_files(path, base) if "huggingface" in base else None
        return Source(model, base, list(manifest.get("transforms", [])), files)
    model = load_path(path, source.format, source.factory)
    return Source(model, {"factory": source.factory})
