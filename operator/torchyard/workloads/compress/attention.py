"""Choosing a Hugging Face model's attention kernel by measurement.

transformers defaults to PyTorch's fused scaled-dot-product attention. On CPUs, for
the short sequences of sentence encoders, its flash kernel can be slower than the plain
matmul-softmax-matmul path (MiniLM int8, 32 sentences of ~41 tokens, 2 threads: 79 ->
68 ms in one run, equal in another); for long sequences it is the other way round. Both
compute the same function, so the job times each on the latency batch and keeps the
faster one. The choice is an artifact transform (`attention`), so the serving workload
runs the kernel that was measured.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from torchyard.workloads.artifacts import transform
from torchyard.workloads.compress.evaluate import Adapter, Batch, median_latencies_ms

IMPLEMENTATIONS = ("sdpa", "eager")


def implementation(model: nn.Module) -> str | None:
    """The model's attention implementation; None when it has no choice of kernels."""
    config = getattr(model, "config", None)
    chosen = getattr(config, "_attn_implementation", None)
    if chosen not in IMPLEMENTATIONS or not hasattr(model, "set_attn_implementation"):
        return None
    return str(chosen)


def choose_attention(
    model: nn.Module, adapter: Adapter, batch: Batch
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Set `model` to its fastest attention kernel on `batch`; return the transform that
    replays the choice and what was measured."""
    if implementation(model) is None:
        return [], {}
    # The kernels take turns over the rounds, so load on a shared CPU hits both alike.
    models = [_Switch(model, name) for name in IMPLEMENTATIONS]
    medians = median_latencies_ms(models, adapter, batch)
    timings = {name: round(ms, 3) for name, ms in zip(IMPLEMENTATIONS, medians, strict=True)}
    fastest = min(timings, key=lambda name: timings[name])
    params = {"implementation": fastest}
    _set(model, params)
    record = {"chosen": fastest, "latencyMsByKernel": timings}
    # Recorded even when the default won: serving must not depend on its library's default.
    return [{"name": "attention", **params}], record


class _Switch(nn.Module):
    """`model` with the attention kernel `name`, for timing kernels against each other."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model, self.name = model, name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        _set(self.model, {"implementation": self.name})
        return self.model(*args, **kwargs)


@transform("attention")
def _set(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    if params["implementation"] not in IMPLEMENTATIONS:
        raise ValueError(f"attention implementation must be one of {IMPLEMENTATIONS}")
    if implementation(model) is not None:
        model.set_attn_implementation(params["implementation"])  # type: ignore[operator]
    return model
