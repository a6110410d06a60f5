"""Int8 Conv2d whose state is plain tensors, like qmodules.Int8Linear.

State: int8 `weight` (out, in/groups, kh, kw), float `weight_scale` (per output channel
or one), float `bias`, and for static compute the input and output [scale, zero_point].
fbgemm's packed weight is built lazily the first time the layer runs (see _Packed).

compute:
- static: the input is quantized per tensor with calibrated qparams, fbgemm's
  `quantized::conv2d` computes in int8 and requantizes to calibrated output qparams;
- weight_only: F.conv2d on the dequantized weight (int8 storage, float compute);
- dynamic is computed as weight_only. fbgemm does have `quantized::conv2d_dynamic`, but
  it requantizes the *output* with the *input's* scale and zero point, so every output
  outside the input's range saturates (measured: input in [0, 1], outputs in [-16, 11]
  came back in [0, 2], relative error 0.87); a dynamic conv would need an output range,
  which only calibration (static) gives.

Fold BatchNorm into the conv first (compress.batchnorm): then the int8 conv is what the
model computes. Only zero padding (symmetric, per dimension) has a kernel: from_float
refuses other convs with ValueError, and has_int8_kernel tells a plan which to leave float.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from torchyard.workloads.compress.qmodules import (
    ACTIVATION_QMAX,
    Compute,
    _affine_qparams,
    _fbgemm_weight,
    _Packed,
    dequantize_weight,
    quantize_weight,
)

Pair = tuple[int, int]


class Int8Conv2d(_Packed):
    """nn.Conv2d (zero padding) with int8 weights; see the module docstring for compute."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        compute: Compute = "static",
        per_channel: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels}->{out_channels} not divisible by {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.compute: Compute = "weight_only" if compute == "dynamic" else compute
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.register_buffer("weight", torch.zeros(shape, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_channels if per_channel else 1))
        self.register_buffer("bias", torch.zeros(out_channels) if bias else None)
        if self.compute == "static":
            # [scale, zero_point] of the input and of the output, as floats.
            self.register_buffer("input_qparams", torch.tensor([1.0, 0.0]))
            self.register_buffer("output_qparams", torch.tensor([1.0, 0.0]))

    @classmethod
    def from_float(cls, conv: nn.Conv2d, *, compute: Compute, per_channel: bool) -> Int8Conv2d:
        """The int8 form of `conv` (its BatchNorm already folded in, if any); ValueError
        for what the kernel cannot compute (padding modes other than zeros)."""
        module = cls.like(conv, compute=compute, per_channel=per_channel)
        module.weight, module.weight_scale = quantize_weight(conv.weight, per_channel)
        if conv.bias is not None:
            module.bias = conv.bias.detach().float().clone()
        return module

    @classmethod
    def like(cls, conv: nn.Conv2d, *, compute: Compute, per_channel: bool) -> Int8Conv2d:
        """An empty layer of `conv`'s shape (its state is to be loaded)."""
        if conv.padding_mode != "zeros":
            raise ValueError(f"Conv2d padding_mode {conv.padding_mode!r} has no int8 kernel")
        return cls(
            conv.in_channels,
            conv.out_channels,
            _pair(conv.kernel_size),
            _pair(conv.stride),
            _explicit_padding(conv),
            _pair(conv.dilation),
            conv.groups,
            conv.bias is not None,
            compute=compute,
            per_channel=per_channel,
        )

    def set_activation_ranges(
        self, input_range: tuple[float, float], output_range: tuple[float, float]
    ) -> None:
        """Static mode: fix the quantization of inputs and outputs from observed ranges
        (per tensor: one range over batch, channels and pixels)."""
        self.input_qparams = _affine_qparams(*input_range, ACTIVATION_QMAX)
        self.output_qparams = _affine_qparams(*output_range, 255)

    def parameter_count(self) -> int:
        return self.weight.numel() + (0 if self.bias is None else self.bias.numel())

    def float_weight(self) -> torch.Tensor:
        return dequantize_weight(self.weight, self.weight_scale)

    def _kernel(self) -> Any:
        return self._pack_once(
            lambda: torch.ops.quantized.conv2d_prepack(
                _fbgemm_weight(self.weight, self.weight_scale),
                self.bias,
                list(self.stride),
                list(self.padding),
                list(self.dilation),
                self.groups,
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._kernel() if self.compute == "static" else False
        if packed is False:
            return self._float_conv(x)
        unbatched = x.dim() == 3  # nn.Conv2d takes (C, H, W); the kernel wants a batch
        batch = x.unsqueeze(0) if unbatched else x
        out = self._int8_conv(batch, packed).to(x.dtype)
        return out.squeeze(0) if unbatched else out

    def _float_conv(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.float_weight().to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _int8_conv(self, x: torch.Tensor, packed: Any) -> torch.Tensor:
        scale, zero_point = self.input_qparams.tolist()
        quantized = torch.quantize_per_tensor(x.float(), scale, int(zero_point), torch.quint8)
        out_scale, out_zero_point = self.output_qparams.tolist()
        out = torch.ops.quantized.conv2d(quantized, packed, out_scale, int(out_zero_point))
        # The kernel answers channels-last; nn.Conv2d answers in its input's layout, and
        # code such as `x.view(len(x), -1)` after a conv relies on that. Reordering the
        # uint8 values costs a quarter of reordering floats.
        return out.contiguous(memory_format=_memory_format(x)).dequantize()

    def extra_repr(self) -> str:
        granularity = "per_channel" if self.weight_scale.numel() > 1 else "per_tensor"
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, {self.compute}, {granularity}"
        )


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """The layout nn.Conv2d would answer in for `x`."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


def _explicit_padding(conv: nn.Conv2d) -> Pair:
    """nn.Conv2d's padding as the two integers the kernel takes ('valid', 'same')."""
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        # 'same' pads d*(k-1) in total per side pair; odd totals pad unevenly, which the
        # kernel (one padding per dimension) cannot express.
        totals = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        if any(total % 2 for total in totals):
            raise ValueError("Conv2d padding='same' with an even kernel pads unevenly")
        return (totals[0] // 2, totals[1] // 2)
    return _pair(conv.padding)  # type: ignore[arg-type]


def has_int8_kernel(conv: nn.Module) -> bool:
    """Whether `conv` can become an Int8Conv2d: a plain nn.Conv2d (a subclass may compute
    otherwise) with zero padding the kernel can express. A plan leaves the others float."""
    if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros":
        return False
    try:
        _explicit_padding(conv)
    except ValueError:
        return False
    return True


@dataclass
class ConvStats:
    """What a Conv layer saw on sample data: one input range and one output range.

    Per tensor, because the int8 conv quantizes its input per tensor (NCHW activations
    have no last-dim channel axis as Linear inputs do). Same reading interface as
    quantize.LayerStats (input_range, output_range), so a static layer is set up alike.
    """

    input_low: float = float("inf")
    input_high: float = float("-inf")
    output_low: float = float("inf")
    output_high: float = float("-inf")

    def update(self, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        low, high = torch.aminmax(inputs.detach().float())
        out_low, out_high = torch.aminmax(outputs.detach().float())
        self.input_low, self.input_high = (
            min(self.input_low, float(low)),
            max(self.input_high, float(high)),
        )
        self.output_low, self.output_high = (
            min(self.output_low, float(out_low)),
            max(self.output_high, float(out_high)),
        )

    def input_range(self, smoothing: torch.Tensor | None = None) -> tuple[float, float]:
        if smoothing is not None:
            raise ValueError("conv layers are not smoothed")
        return self.input_low, self.input_high

    def output_range(self) -> tuple[float, float]:
        return self.output_low, self.output_high


def conv_stats_hook(stats: MutableMapping[str, Any], name: str) -> Any:
    """A forward hook that records a Conv2d's ranges into stats[name] (a ConvStats, made
    on the first call: a conv that never runs has no entry, like quantize.observe's)."""

    def record(_: nn.Module, inputs: tuple[torch.Tensor, ...], outputs: torch.Tensor) -> None:
        stats.setdefault(name, ConvStats()).update(inputs[0], outputs)

    return record


QUANTIZED_CONV = (Int8Conv2d,)
