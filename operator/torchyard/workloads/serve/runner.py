"""The model behind the server: loaded from a verified artifact, run on a batch.

Two kinds of model are served:

- tensor models (torchyard artifacts built from a factory, TorchScript, ...): one FP32
  input `input` of shape [-1, features...], outputs as the module returns them
  (`output`, `output_0`...); the input shape comes from a `signature` in the artifact's
  manifest.json when there is one, else from the module's first layer;
- text encoders (Hugging Face directories and torchyard artifacts of a Hugging Face
  base, e.g. MiniLM, compressed or not): a BYTES input `text`, one string per row, and
  an FP32 output `embedding`: mean-pooled, L2-normalised sentence embeddings, as
  sentence-transformers computes them for MiniLM. A model fine-tuned by a TrainingJob
  with a task answers for its task: `label` (BYTES, the class name) and `probabilities`
  (FP32, one per class) for classification, `prediction` (FP32) for regression, and
  `embedding` for embedding.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchyard.api.modelversion import ArtifactSpec
from torchyard.storage import read_manifest
from torchyard.workloads.models import ModelLoadError, load_path
from torchyard.workloads.serve.protocol import (
    BYTES,
    DATATYPES,
    Column,
    Signature,
    TensorSpec,
    datatype_of,
)
from torchyard.workloads.textmodels import (
    TextTaskModel,
    load_tokenizer,
    mean_pool,
    tokenize,
    tokenizer_dir,
)

PLATFORM = "pytorch"
# Size given to variable non-batch dimensions in the warm-up example.
EXAMPLE_EXTENT = 32
WARM_UP_TEXT = "torchyard warm-up"

log = logging.getLogger("torchyard.serve")


class Runner(ABC):
    """A loaded model: what it takes, and a forward pass over a batch of rows."""

    inputs: tuple[TensorSpec, ...]

    @abstractmethod
    def forward(self, batch: Mapping[str, Column]) -> dict[str, Column]:
        """Outputs for the batch, each with as many rows (dimension 0) as the inputs."""

    @abstractmethod
    def example(self) -> dict[str, Column]:
        """A one-row batch for the warm-up pass."""

    def warm_up(self) -> Signature:
        """Run the example once (the first pass pays for lazy initialisation) and learn
        the outputs' names, datatypes and shapes from it."""
        outputs = self.forward(self.example())
        specs = tuple(
            TensorSpec(name, BYTES, (-1,))
            if isinstance(value, list)
            else TensorSpec(name, datatype_of(value.dtype), (-1, *value.shape[1:]))
            for name, value in outputs.items()
        )
        return Signature(self.inputs, specs)


class TensorRunner(Runner):
    def __init__(self, module: nn.Module, inputs: tuple[TensorSpec, ...]) -> None:
        self.module = module.eval()
        self.inputs = inputs

    def forward(self, batch: Mapping[str, Column]) -> dict[str, Column]:
        with torch.inference_mode():
            return _named_outputs(self.module(*(batch[spec.name] for spec in self.inputs)))

    def example(self) -> dict[str, Column]:
        example: dict[str, Column] = {}
        for spec in self.inputs:
            shape = [1, *(EXAMPLE_EXTENT if dim == -1 else dim for dim in spec.shape[1:])]
            if spec.datatype == BYTES:
                example[spec.name] = [WARM_UP_TEXT] * math.prod(shape)
            else:
                example[spec.name] = torch.zeros(shape, dtype=DATATYPES[spec.datatype])
        return example


class TextRunner(Runner):
    inputs = (TensorSpec("text", BYTES, (-1,)),)

    def __init__(self, module: nn.Module, tokenizer: Any) -> None:
        self.module = module.eval()
        self.tokenizer = tokenizer
        encoder = module.encoder if isinstance(module, TextTaskModel) else module
        positions = getattr(getattr(encoder, "config", None), "max_position_embeddings", 512)
        self.max_length = min(int(tokenizer.model_max_length), int(positions))
        if isinstance(module, TextTaskModel) and module.max_length is not None:
            self.max_length = min(self.max_length, module.max_length)  # as it was trained

    def forward(self, batch: Mapping[str, Column]) -> dict[str, Column]:
        texts = batch["text"]
        assert isinstance(texts, list)
        encoded = tokenize(self.tokenizer, texts, self.max_length)
        with torch.inference_mode():
            if isinstance(self.module, TextTaskModel):
                return self._task_outputs(self.module(**encoded).float())
            # float32 whatever the weights: an fp16/bf16-cast artifact still answers FP32.
            hidden = self.module(**encoded)[0].float()
            pooled = mean_pool(hidden, encoded["attention_mask"])
            return {"embedding": nn.functional.normalize(pooled, dim=-1)}

    def _task_outputs(self, output: torch.Tensor) -> dict[str, Column]:
        """A fine-tuned model's answer: the class and its probabilities, the number, or
        the embedding."""
        model = self.module
        assert isinstance(model, TextTaskModel)
        if model.task == "classification":
            probabilities = output.softmax(dim=-1)
            names = model.labels or [str(i) for i in range(output.shape[-1])]
            label: list[str] = [names[int(i)] for i in probabilities.argmax(dim=-1)]
            return {"label": label, "probabilities": probabilities}
        if model.task == "regression":
            return {"prediction": output[:, 0]}
        return {"embedding": output}

    def example(self) -> dict[str, Column]:
        return {"text": [WARM_UP_TEXT]}


def load_runner(path: Path, artifact: ArtifactSpec) -> Runner:
    """Load the artifact at `path` (already fetched and verified) into a runner."""
    module = load_path(path, artifact.format)
    manifest = read_manifest(path) if path.is_dir() else {}
    warn_of_fewer_activation_bits(manifest)
    directory = tokenizer_dir(path, artifact.format, manifest)
    if directory is not None:
        return TextRunner(module, load_tokenizer(directory))
    return TensorRunner(module, _input_specs(module, manifest))


def warn_of_fewer_activation_bits(manifest: Mapping[str, Any]) -> bool:
    """Say so when this CPU computes dynamic int8 layers with fewer activation bits than
    the CompressionJob measured with (a VNNI CPU there, none here): the model then
    answers less faithfully than its status.result says. True when it warned."""
    from torchyard.workloads.compress.qmodules import activation_bits

    compression = manifest.get("compression")
    measured = compression.get("int8ActivationBits") if isinstance(compression, dict) else None
    here = activation_bits()
    if not isinstance(measured, int) or measured <= here or not _quantizes_activations(manifest):
        return False
    log.warning(
        "this artifact's quality was measured with %d-bit int8 activations; this CPU has "
        "no AVX512-VNNI, so its dynamic int8 layers use %d bits and may answer less "
        "faithfully than the CompressionJob reported (serve it on VNNI nodes, or compress "
        "it on a node like this one)",
        measured,
        here,
    )
    return True


def _quantizes_activations(manifest: Mapping[str, Any]) -> bool:
    """Whether a layer quantizes its activations per batch (dynamic Linear, LSTM): only
    those depend on the CPU's activation bits."""
    for step in manifest.get("transforms") or []:
        layers = step.get("layers") if isinstance(step, dict) else None
        if step.get("name") == "quantize" and isinstance(layers, dict):
            for entry in layers.values():
                if isinstance(entry, dict) and (
                    entry.get("compute") == "dynamic" or entry.get("kind") == "lstm"
                ):
                    return True
    return False


def _input_specs(module: nn.Module, manifest: Mapping[str, Any]) -> tuple[TensorSpec, ...]:
    declared = (manifest.get("signature") or {}).get("inputs")
    if declared:
        return tuple(
            TensorSpec(item["name"], item["datatype"], tuple(item["shape"])) for item in declared
        )
    # Linear layers (float, quantized or scripted) know their input width.
    for _, layer in module.named_modules():
        features = getattr(layer, "in_features", None)
        if isinstance(features, int):
            return (TensorSpec("input", "FP32", (-1, features)),)
    # Traced modules keep only parameters: the first weight tells the input's width
    # (Linear: [out, in]) or channels (Conv: [out, in, *kernel]).
    for name, parameter in module.named_parameters():
        if name.endswith("weight") and parameter.dim() >= 2:
            channels = int(parameter.shape[1])
            return (TensorSpec("input", "FP32", (-1, channels, *[-1] * (parameter.dim() - 2))),)
    raise ModelLoadError(
        "cannot tell the model's input shape from its layers; add "
        '"signature": {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, N]}]} '
        "to the artifact's manifest.json"
    )


def _named_outputs(result: Any) -> dict[str, Column]:
    if isinstance(result, torch.Tensor):
        return {"output": result}
    if isinstance(result, Mapping):  # dicts and Hugging Face ModelOutputs
        return {str(k): v for k, v in result.items() if isinstance(v, torch.Tensor)}
    if isinstance(result, tuple | list):
        return {f"output_{i}": v for i, v in enumerate(result) if isinstance(v, torch.Tensor)}
    raise TypeError(f"the model returned {type(result).__name__}, not tensors")
