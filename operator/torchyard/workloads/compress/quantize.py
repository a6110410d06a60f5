"""Quantization: int8 (dynamic, weight-only, static) and fp16/bf16 casts.

Which layers become what (see qmodules for the kernels and why):

| mode        | Linear              | Embedding    | LSTM          | Conv2d (BN folded)  |
|-------------|---------------------|--------------|---------------|---------------------|
| dynamic     | int8, dynamic       | int8 per row | int8, dynamic | int8, float compute |
| weight_only | int8, float compute | int8 per row | float         | int8, float compute |
| static      | int8, calibrated    | int8 per row | float         | int8, calibrated    |

Embeddings do no arithmetic, so weight-only storage is their int8 form in every mode;
leaving them in fp32 (as `quantize_dynamic` does) leaves half of a BERT-sized model's
bytes untouched. fbgemm's dynamic conv clips its outputs (see qconv), so a conv in
dynamic mode keeps int8 weights and computes in float.

When sample data is at hand (calibration, else the evaluation set's train split), the
activation outliers that make per-tensor activation scales coarse are measured, and
SmoothQuant-style smoothing (Xiao et al. 2023) migrates them into the weights; the
migration strength is *chosen by measurement* on that data (the candidate whose outputs
stay closest to the float model's, including no smoothing at all).

The artifact records, per replaced layer, what it became (transform `quantize`), so
loading rebuilds int8 layers of the right shapes and fills them from weights.safetensors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.linear import NonDynamicallyQuantizableLinear

from torchyard.api.compression import QuantizeSpec
from torchyard.workloads.artifacts import transform
from torchyard.workloads.compress.batchnorm import fold_batchnorm, fold_record
from torchyard.workloads.compress.evaluate import Adapter, cosines
from torchyard.workloads.compress.modules import get_module, set_module
from torchyard.workloads.compress.qconv import (
    ConvStats,
    Int8Conv2d,
    conv_stats_hook,
    has_int8_kernel,
)
from torchyard.workloads.compress.qmodules import (
    INT8_COMPUTE,
    Compute,
    Int8Embedding,
    Int8Linear,
    Int8LSTM,
    activation_bits,
    native_bf16,
)
from torchyard.workloads.datasets import Dataset

SMOOTHING_STRENGTHS: tuple[float | None, ...] = (None, 0.5, 0.65, 0.8)
# Smooth only inputs with outlier channels (largest channel peak / median channel peak):
# elsewhere the extra multiply costs time (~1 % per layer on MiniLM) and buys nothing.
OUTLIER_RATIO = 4.0
CAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Quantized:
    model: nn.Module
    transforms: list[dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)


def fallback(mode: str) -> Compute:
    """Where a layer goes when its mode loses too much: one step more faithful, and
    slower. From dynamic: bf16 arithmetic where the CPU has it (nearly int8's speed on
    such CPUs), else float."""
    if mode == "static":
        return "dynamic"
    return "bf16" if native_bf16() else "weight_only"


@dataclass(frozen=True)
class Config:
    """One way to quantize a model: what the accuracy-aware search varies."""

    mode: str
    per_channel: bool
    strength: float | None = None
    """SmoothQuant migration strength for inputs with outlier channels; None: no smoothing."""
    fallback: tuple[str, ...] = ()
    """Layers computed one step more faithfully than `mode` (see `fallback`)."""

    def record(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "granularity": "per_channel" if self.per_channel else "per_tensor",
            "smoothing": self.strength,
            "fallback": list(self.fallback),
        }

    def summary(self) -> str:
        smoothing = "no smoothing" if self.strength is None else f"smoothing {self.strength}"
        text = f"{self.mode}, {smoothing}"
        if self.fallback:
            text += f", {len(self.fallback)} layers {fallback(self.mode).replace('_', '-')}"
        return text


def quantize(
    model: nn.Module, spec: QuantizeSpec, adapter: Adapter, samples: Dataset | None
) -> Quantized:
    """Quantize a copy of `model`; `samples` calibrate (static) and choose smoothing."""
    if spec.mode in CAST_DTYPES:
        params = {"dtype": spec.mode}
        return Quantized(cast(copy.deepcopy(model), params), [{"name": "cast", **params}], params)
    per_channel = spec.granularity == "per_channel"
    if samples is None and spec.mode == "static":
        raise ValueError("static quantization needs calibration samples")
    model, folded = fold_batchnorm(copy.deepcopy(model))
    if samples is None or spec.mode == "weight_only":
        # Without samples there is nothing to smooth with; weight-only keeps activations
        # in float, so there is nothing to smooth.
        config = Config(spec.mode, per_channel)
        return quantized(build(model, config, {}), config, {}, folded)
    stats = observe(model, adapter, samples)
    strength, tried = choose_smoothing(model, spec.mode, per_channel, adapter, samples)
    config = Config(spec.mode, per_channel, strength)
    smoothing = {"chosen": strength, "minCosineByStrength": tried}
    return quantized(build(model, config, stats), config, {"smoothing": smoothing}, folded)


def choose_smoothing(
    model: nn.Module, mode: str, per_channel: bool, adapter: Adapter, samples: Dataset
) -> tuple[float | None, dict[str, float]]:
    """The smoothing strength whose quantized model stays closest to the float one.

    Smoothing factors fitted on some sentences fit those sentences best (measured: min
    cosine 0.994 on the fitting set, 0.975 on others), so candidates are fitted on three
    quarters of the samples and judged on the held-out quarter.
    """
    fit, held_out = split_samples(samples)
    if len(held_out) == 0:
        return None, {}
    stats = observe(model, adapter, fit)
    reference = adapter.predict(model, held_out)
    tried: dict[str, float] = {}
    for strength in SMOOTHING_STRENGTHS:
        candidate = build(model, Config(mode, per_channel, strength), stats).model
        tried[str(strength)] = round(
            float(cosines(adapter.predict(candidate, held_out), reference).min()), 5
        )
    best = max(SMOOTHING_STRENGTHS, key=lambda strength: tried[str(strength)])
    return best, tried


def split_samples(samples: Dataset) -> tuple[Dataset, Dataset]:
    """Three quarters to fit on (activation statistics), a quarter to judge on."""
    cut = max(1, len(samples) * 3 // 4)
    return samples.rows(0, cut), samples.rows(cut, len(samples))


Stats = dict[str, "LayerStats | ConvStats"]


@dataclass(frozen=True)
class Built:
    """A quantized copy of a model, and the `quantize` record that replays it."""

    model: nn.Module
    layers: dict[str, dict[str, Any]]


def build(model: nn.Module, config: Config, stats: Stats) -> Built:
    """A quantized copy of `model` as `config` says (`model` is left as it is)."""
    plan = _plan(model, config, stats)
    # The smoothing strength is not part of the record: the factors are state.
    layers = {name: {k: v for k, v in e.items() if k != "strength"} for name, e in plan.items()}
    return Built(_apply(copy.deepcopy(model), plan, stats), layers)


def quantized(built: Built, config: Config, extra: dict[str, Any], folded: list[str]) -> Quantized:
    """The result record of a model `build` made from `config`, after `fold_batchnorm`
    folded the BatchNorms named in `folded`."""
    plan = built.layers
    kinds = [entry["kind"] for entry in plan.values()]
    details: dict[str, Any] = {
        "mode": config.mode,
        "granularity": "per_channel" if config.per_channel else "per_tensor",
        "layers": {kind: kinds.count(kind) for kind in sorted(set(kinds))},
        "int8ActivationBits": activation_bits(),
        **extra,
    }
    if config.fallback:
        # As built: a conv falls back to float compute where a Linear gets bf16 or dynamic.
        fell: dict[str, list[str]] = {}
        for name in config.fallback:
            if name in plan:
                fell.setdefault(plan[name].get("compute", "float"), []).append(name)
        details["fallback"] = fell
    if folded:
        details["foldedBatchNorms"] = len(folded)
    transforms = [*fold_record(folded), {"name": "quantize", "layers": plan}]
    return Quantized(built.model, transforms, details)


# -- which layer becomes what ------------------------------------------------------------


def _plan(model: nn.Module, config: Config, stats: Stats) -> dict[str, dict[str, Any]]:
    """name -> how that layer is quantized (the `quantize` transform's record)."""
    plan: dict[str, dict[str, Any]] = {}
    per_channel, strength = config.per_channel, config.strength
    for name, module in model.named_modules():
        if isinstance(module, NonDynamicallyQuantizableLinear):
            continue  # nn.MultiheadAttention reads its out_proj's float weight directly
        if isinstance(module, nn.Linear):
            compute = fallback(config.mode) if name in config.fallback else config.mode
            if compute == "static" and name not in stats:
                continue  # never ran on the samples: no range to calibrate, stays float
            layer_stats = stats.get(name)
            smooth = (
                strength is not None
                and compute in INT8_COMPUTE
                and isinstance(layer_stats, LayerStats)
                and layer_stats.outlier_ratio() >= OUTLIER_RATIO
            )
            plan[name] = {
                "kind": "linear",
                "compute": compute,
                "perChannel": per_channel,
                "smoothing": smooth,
            }
            if smooth:
                plan[name]["strength"] = strength
        elif isinstance(module, nn.Embedding):
            plan[name] = {"kind": "embedding", "perChannel": per_channel}
        elif isinstance(module, nn.Conv2d) and has_int8_kernel(module):
            compute = fallback(config.mode) if name in config.fallback else config.mode
            if compute == "static" and name not in stats:
                continue  # never ran on the samples
            # fbgemm's dynamic conv clips outputs to the input's range (see qconv): a
            # conv is int8 static, or int8 storage with float compute.
            conv_compute = "static" if compute == "static" else "weight_only"
            plan[name] = {"kind": "conv", "compute": conv_compute, "perChannel": per_channel}
        elif isinstance(module, nn.LSTM) and config.mode == "dynamic" and not module.proj_size:
            plan[name] = {"kind": "lstm", "perChannel": per_channel}
    return plan


def _apply(model: nn.Module, plan: dict[str, dict[str, Any]], stats: Stats) -> nn.Module:
    for name, entry in plan.items():
        module = get_module(model, name)
        layer_stats = stats.get(name)
        set_module(model, name, _quantized_layer(module, entry, layer_stats))
    return model


def _quantized_layer(
    module: nn.Module, entry: dict[str, Any], stats: LayerStats | ConvStats | None
) -> nn.Module:
    per_channel = bool(entry["perChannel"])
    if entry["kind"] == "embedding":
        assert isinstance(module, nn.Embedding)
        return Int8Embedding.from_float(module, per_channel=per_channel)
    if entry["kind"] == "lstm":
        assert isinstance(module, nn.LSTM)
        return Int8LSTM(module, per_channel=per_channel)
    if entry["kind"] == "conv":
        assert isinstance(module, nn.Conv2d)
        conv = Int8Conv2d.from_float(module, compute=entry["compute"], per_channel=per_channel)
        if conv.compute == "static" and stats is not None:
            conv.set_activation_ranges(stats.input_range(None), stats.output_range())
        return conv
    assert isinstance(module, nn.Linear) and not isinstance(stats, ConvStats)
    compute: Compute = entry["compute"]
    smoothing = None
    if entry.get("smoothing"):
        # Replays (no stats) build the layer with neutral factors; the state fills them.
        smoothing = (
            torch.ones(module.in_features)
            if stats is None
            else stats.smoothing(module.weight, entry["strength"])
        )
    layer = Int8Linear.from_float(
        module, compute=compute, per_channel=per_channel, smoothing=smoothing
    )
    if compute == "static" and stats is not None:
        layer.set_activation_ranges(stats.input_range(smoothing), stats.output_range())
    return layer


@transform("quantize")
def _replay_quantize(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    return _apply(model, params["layers"], {})


def cast(model: nn.Module, params: dict[str, Any]) -> nn.Module:
    """Floating-point weights to fp16/bf16; the model still takes and returns float32
    (inputs are cast on the way in, outputs on the way out), so callers such as the
    serving workload need not know."""
    dtype = CAST_DTYPES[params["dtype"]]
    model.to(dtype)

    def inputs(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        return tuple(_to(a, dtype) for a in args), {k: _to(v, dtype) for k, v in kwargs.items()}

    def outputs(_: nn.Module, __: Any, result: Any) -> Any:
        if isinstance(result, torch.Tensor):
            return _to(result, torch.float32)
        return result  # structured outputs (Hugging Face) are left as they are

    model.register_forward_pre_hook(inputs, with_kwargs=True)
    model.register_forward_hook(outputs)
    return model


def _to(value: Any, dtype: torch.dtype) -> Any:
    return (
        value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value
    )


transform("cast")(cast)


# -- observing activations ----------------------------------------------------------------


@dataclass
class LayerStats:
    """What a Linear layer saw on sample data: per-channel input range, output range."""

    input_low: torch.Tensor
    input_high: torch.Tensor
    output_low: float
    output_high: float

    def update(self, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        low, high = torch.aminmax(inputs.detach().reshape(-1, inputs.shape[-1]).float(), dim=0)
        self.input_low = torch.minimum(self.input_low, low)
        self.input_high = torch.maximum(self.input_high, high)
        out_low, out_high = torch.aminmax(outputs.detach())
        self.output_low = min(self.output_low, float(out_low))
        self.output_high = max(self.output_high, float(out_high))

    def smoothing(self, weight: torch.Tensor, strength: float) -> torch.Tensor:
        """Per input channel factor s: the layer computes (x * s) @ (W / s).T.

        SmoothQuant's s_j = max|W_j|^(1-a) / max|x_j|^a scales channels with outlier
        activations down before the activation is quantized, their weights up. Capped at
        the median channel's factor: a channel that was near zero on the samples must not
        be amplified (measured: on digits, pixels blank in calibration but not in test
        became outliers and cost 7 points of accuracy)."""
        activation = torch.maximum(self.input_low.abs(), self.input_high.abs()).clamp_min(1e-5)
        weights = weight.detach().float().abs().amax(0).clamp_min(1e-5)
        factors = weights ** (1 - strength) / activation**strength
        return (factors / factors.median()).clamp(1e-4, 1.0)

    def outlier_ratio(self) -> float:
        peaks = torch.maximum(self.input_low.abs(), self.input_high.abs())
        return float(peaks.max() / peaks.median().clamp_min(1e-8))

    def input_range(self, smoothing: torch.Tensor | None) -> tuple[float, float]:
        scale = torch.ones_like(self.input_low) if smoothing is None else smoothing
        return float((self.input_low * scale).min()), float((self.input_high * scale).max())

    def output_range(self) -> tuple[float, float]:
        return self.output_low, self.output_high


def observe(model: nn.Module, adapter: Adapter, samples: Dataset) -> Stats:
    """Run the float model on `samples` and record every Linear layer's activations (per
    input channel) and every Conv2d's (per tensor: NCHW inputs)."""
    stats: Stats = {}

    def hook(name: str) -> Any:
        def record(_: nn.Module, inputs: tuple[torch.Tensor, ...], outputs: torch.Tensor) -> None:
            x = inputs[0]
            if name not in stats:
                width = x.shape[-1]
                inf = torch.full((width,), float("inf"))
                stats[name] = LayerStats(inf, -inf, float("inf"), float("-inf"))
            stats[name].update(x, outputs)

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
    ]
    handles += [
        module.register_forward_hook(conv_stats_hook(stats, name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        adapter.predict(model, samples)
    finally:
        for handle in handles:
            handle.remove()
    return stats
