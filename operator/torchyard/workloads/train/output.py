"""The trained model as a torchyard artifact that CompressionJob and ModelVersion read.

The artifact names the same architecture as the model the job started from (its factory
or Hugging Face config, and any transforms a previous job applied) with the trained
weights, so `workloads.artifacts.load_artifact` rebuilds it anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from torchyard.api.common import ModelSource, OutputSpec
from torchyard.storage import Artifact, compute_digest, fetch, read_manifest
from torchyard.workloads.artifacts import BASE_DIR, base_files, save_artifact
from torchyard.workloads.report import PermanentError
from torchyard.workloads.textmodels import TEXT_TASK, TextTaskModel


def check_rebuildable(source: ModelSource) -> None:
    """Refuse, before training, a model whose architecture an artifact cannot describe."""
    if source.format == "torchscript":
        raise PermanentError(
            "UnsupportedModelFormat",
            "model.format torchscript cannot be trained into a torchyard artifact (a "
            "scripted module does not say how to rebuild it); give the weights as "
            "safetensors or state_dict with a factory, or a torchyard artifact",
        )


def architecture(source: ModelSource) -> tuple[dict[str, Any], list[dict[str, Any]], Path | None]:
    """(base, transforms, Hugging Face files) describing the source model's structure."""
    if source.format == "torchyard":
        path = fetch(source.uri)
        manifest = read_manifest(path)
        base = manifest["base"]
        files = base_files(path, base) if "huggingface" in base else None
        return base, list(manifest.get("transforms", [])), files
    if source.format == "huggingface":
        return {"huggingface": BASE_DIR}, [], fetch(source.uri)
    assert source.factory is not None, "the API requires a factory for weights-only formats"
    return {"factory": source.factory}, [], None


def input_ref(source: ModelSource) -> dict[str, Any]:
    """status.input as the job saw it: the starting model's URI (or factory) and the
    digest of the content it read (the lineage of the artifact)."""
    if source.uri is None:
        return {"factory": source.factory}
    return {"uri": source.uri, "digest": source.digest or compute_digest(fetch(source.uri))}


def save_trained(
    output: OutputSpec, model: nn.Module, source: ModelSource, figures: dict[str, Any]
) -> Artifact:
    base, transforms, files = architecture(source)
    if isinstance(model, TextTaskModel):
        # The head this job put on the encoder replaces any head the source had.
        transforms = [step for step in transforms if step.get("name") != TEXT_TASK]
        transforms.append(model.describe())
    extra = {"source": {"uri": source.uri, "format": source.format}, "training": figures}
    return save_artifact(
        output.uri,
        model,
        base=base,
        transforms=transforms,
        extra=extra,
        base_files=files,
        overwrite=output.overwrite,
    )
