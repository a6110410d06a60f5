"""A text encoder with a task head: what a TrainingJob with a task trains, and what its
artifact rebuilds (transform `text_task`) for CompressionJob and the serving workload.

The encoder's token outputs are mean-pooled over the attention mask, as
sentence-transformers pools MiniLM. Classification and regression put a linear head on
the pooled vector; embedding returns it L2-normalised (no head).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchyard.workloads.artifacts import transform

TEXT_TASK = "text_task"


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token vectors that the attention mask keeps."""
    return pool(hidden, mask.unsqueeze(-1))


def pool(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean_pool with the mask already shaped [batch, length, 1]."""
    weights = weights.to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)


class TextTaskModel(nn.Module):
    """encoder -> mean pooling -> head (classification, regression) or normalisation
    (embedding). Takes the tokenizer's output as keyword arguments."""

    def __init__(
        self,
        encoder: nn.Module,
        task: str,
        labels: list[str],
        outputs: int,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        self.max_length = max_length
        """Tokens per text it was trained on (serving truncates there too)."""
        self.encoder = encoder
        # The encoder's own pooler (BERT's [CLS] dense layer) is not used: without it no
        # parameter goes without a gradient (DDP would wait for it), and the artifact
        # carries no dead weights.
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None
        self.task = task
        self.labels = list(labels)
        hidden = int(encoder.config.hidden_size)  # type: ignore[union-attr]
        self.head = nn.Linear(hidden, outputs) if task != "embedding" else None
        self.encoder_frozen = False

    def freeze_encoder(self) -> None:
        """Train the head only: the encoder's weights fixed and its dropout off (a
        linear probe of its features)."""
        self.encoder_frozen = True
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> TextTaskModel:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if input_ids.dim() == 3:
            # Mode model feeds the ids and the mask as one tensor [batch, 2, length]: a
            # traced pipeline takes one input (torch 2.15's splitter passes several to
            # the first stage in the order they are first used, under the names of the
            # signature's order, so the ids and the mask would swap).
            # Contiguous: what the first stage sends on (gloo sends no strided views).
            input_ids, attention_mask = (part.contiguous() for part in input_ids.unbind(1))
        elif attention_mask is None:
            attention_mask = torch.ones_like(input_ids)  # as Hugging Face models take it
        # The pooling weights come first: cut inside the encoder (mode model), the stage
        # that pools receives them from the first stage, as a later stage gets no input
        # of the model itself.
        weights = attention_mask.unsqueeze(-1)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
        pooled = pool(hidden, weights)
        if self.head is None:
            return nn.functional.normalize(pooled.float(), dim=-1)
        return self.head(pooled)

    def describe(self) -> dict[str, Any]:
        """The `text_task` transform that rebuilds this model around its encoder."""
        outputs = 0 if self.head is None else self.head.out_features
        step = {"name": TEXT_TASK, "task": self.task, "labels": self.labels, "outputs": outputs}
        return step if self.max_length is None else {**step, "maxLength": self.max_length}


@transform(TEXT_TASK)
def _text_task(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    labels = params.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError("labels must be a list of strings")
    max_length = params.get("maxLength")
    return TextTaskModel(
        model,
        str(params["task"]),
        labels,
        int(params.get("outputs", 0)),
        int(max_length) if max_length is not None else None,
    )


def is_text_encoder(model: nn.Module) -> bool:
    """A Hugging Face encoder (or one already wrapped for a task)."""
    if isinstance(model, TextTaskModel):
        return True
    return isinstance(getattr(getattr(model, "config", None), "hidden_size", None), int)


def tokenizer_dir(path: Path, format: str, manifest: Mapping[str, Any]) -> Path | None:
    """Where the tokenizer of the model at `path` is: a Hugging Face directory's own,
    an artifact's base directory, else None (not a text model)."""
    if format == "huggingface":
        return path
    base = manifest.get("base") or {}
    if format == "torchyard" and "huggingface" in base:
        from torchyard.workloads.artifacts import base_files

        return base_files(path, base)
    return None


def tokenize(tokenizer: Any, texts: list[str], max_length: int, fixed: bool = False) -> Any:
    """A batch of texts as the encoder takes it: truncated, padded to the longest (or,
    `fixed`, to max_length)."""
    padding = "max_length" if fixed else True
    return tokenizer(
        texts, padding=padding, truncation=True, max_length=max_length, return_tensors="pt"
    )


def load_tokenizer(directory: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
