"""Int8 convolution and BatchNorm folding with real torch, on the digits CNN's trained
weights (Conv2d + BatchNorm2d + ReLU blocks)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from torchyard.workloads.artifacts import TRANSFORMS, load_artifact, save_artifact
from torchyard.workloads.compress.batchnorm import fold_batchnorm, fold_record
from torchyard.workloads.compress.evaluate import accuracy
from torchyard.workloads.compress.modules import get_module, set_module, state_bytes
from torchyard.workloads.compress.qconv import (
    ConvStats,
    Int8Conv2d,
    conv_stats_hook,
    has_int8_kernel,
)
from torchyard.workloads.compress.qmodules import Compute
from torchyard.workloads.datasets import TensorData
from torchyard.workloads.models import cnn

from .compression import digits, digits_cnn

CNN = {"factory": "torchyard.workloads.models:cnn", "kwargs": {}}


def trained_cnn() -> nn.Module:
    model = cnn()
    model.load_state_dict(load_file(str(digits_cnn())))
    return model.eval()


def outputs(model: nn.Module, data: TensorData) -> torch.Tensor:
    with torch.inference_mode():
        return model(data.features)


def conv_ranges(model: nn.Module, data: TensorData) -> dict[str, ConvStats]:
    """Every Conv2d's input and output range on `data` (what static calibration needs)."""
    stats: dict[str, ConvStats] = {}
    handles = [
        module.register_forward_hook(conv_stats_hook(stats, name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        outputs(model, data)
    finally:
        for handle in handles:
            handle.remove()
    return stats


def int8_convs(
    model: nn.Module, plan: dict[str, dict[str, Any]], stats: dict[str, ConvStats]
) -> nn.Module:
    """Replace the planned convs of `model` (in place), as quantize.py's plan would."""
    for name, entry in plan.items():
        layer = Int8Conv2d.from_float(
            get_module(model, name), compute=entry["compute"], per_channel=entry["perChannel"]
        )
        if layer.compute == "static":
            layer.set_activation_ranges(stats[name].input_range(), stats[name].output_range())
        set_module(model, name, layer)
    return model


def conv_plan(model: nn.Module, compute: Compute, per_channel: bool) -> dict[str, dict[str, Any]]:
    return {
        name: {"kind": "conv", "compute": compute, "perChannel": per_channel}
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    }


@pytest.fixture(scope="module")
def folded() -> tuple[nn.Module, list[str]]:
    return fold_batchnorm(trained_cnn())


@pytest.fixture(scope="module")
def calibration(folded: tuple[nn.Module, list[str]]) -> dict[str, ConvStats]:
    return conv_ranges(folded[0], digits("train"))


def test_folding_is_exact_and_leaves_no_batchnorm(folded):
    model, names = folded
    test = digits("test")
    torch.testing.assert_close(
        outputs(model, test), outputs(trained_cnn(), test), atol=1e-5, rtol=1e-5
    )
    assert names == ["2", "5"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(get_module(model, name).bias is not None for name in ("1", "4"))


class StandardizedConv2d(nn.Conv2d):
    """A conv whose forward does more than its weight says: not to be folded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight - self.weight.mean()) / self.weight.std()
        return self._conv_forward(x, weight, self.bias)


def nested_model() -> nn.Module:
    inner = nn.Sequential(nn.Conv2d(4, 6, 3, bias=False), nn.BatchNorm2d(6, affine=False))
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), inner),
        nn.BatchNorm2d(6),  # follows a Sequential, not a conv: stays
        StandardizedConv2d(6, 6, 1),
        nn.BatchNorm2d(6),  # follows a conv subclass: stays
    )


def test_folding_nested_sequentials_convs_without_bias_and_plain_norms():
    torch.manual_seed(0)
    model = nested_model()
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
            if norm.affine:
                nn.init.uniform_(norm.weight, 0.5, 2)
                nn.init.uniform_(norm.bias, -1, 1)
    model.eval()
    x = torch.randn(2, 3, 7, 7)
    expected = model(x)
    _, names = fold_batchnorm(model)
    assert names == ["0.1", "0.3.1"]
    assert isinstance(model[1], nn.BatchNorm2d) and isinstance(model[3], nn.BatchNorm2d)
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    # the replay gives the bias-less conv a bias, so the folded state loads as it is
    assert fold_record(names) == [{"name": "fold_batchnorm", "batchnorms": names}]
    assert fold_record([]) == []
    replayed = TRANSFORMS["fold_batchnorm"](nested_model(), {"batchnorms": names})
    replayed.load_state_dict(model.state_dict())
    assert torch.equal(replayed.eval()(x), model(x))


@pytest.mark.parametrize(
    ("compute", "per_channel", "points"),
    [
        ("static", True, 1.0),
        ("static", False, 1.0),
        ("weight_only", True, 0.5),
        ("weight_only", False, 0.5),
    ],
)
def test_int8_conv_keeps_accuracy_and_shrinks_state(
    folded, calibration, compute, per_channel, points
):
    model, _ = folded
    test = digits("test")
    assert test.labels is not None
    plan = conv_plan(model, compute, per_channel)
    quantized = int8_convs(copy.deepcopy(model), plan, calibration)
    float_accuracy = accuracy(outputs(model, test), test.labels)
    int8_accuracy = accuracy(outputs(quantized, test), test.labels)
    assert int8_accuracy >= float_accuracy - points / 100
    layers = [get_module(quantized, name) for name in plan]
    assert all(isinstance(layer, Int8Conv2d) and layer.compute == compute for layer in layers)
    assert all(layer.weight.dtype == torch.int8 for layer in layers)
    # only the convs shrink (the Linear head stays float): by ~3 bytes per weight
    conv_weights = sum(layer.weight.numel() for layer in layers)
    assert state_bytes(quantized) < state_bytes(model) - 2.5 * conv_weights


def test_artifact_round_trip_rebuilds_int8_convs(folded, calibration, tmp_path):
    model, names = folded
    plan = {
        "1": {"kind": "conv", "compute": "static", "perChannel": True},
        "4": {"kind": "conv", "compute": "weight_only", "perChannel": False},
    }
    quantized = int8_convs(copy.deepcopy(model), plan, calibration)
    test = digits("test")
    expected = outputs(quantized, test)
    save_artifact(
        f"file://{tmp_path / 'artifact'}",
        quantized,
        base=CNN,
        transforms=[
            {"name": "fold_batchnorm", "batchnorms": names},
            {"name": "quantize", "layers": plan},
        ],
    )
    loaded = load_artifact(Path(tmp_path / "artifact"))
    assert [type(get_module(loaded, n)) for n in ("1", "2", "4", "5")] == [
        Int8Conv2d,
        nn.Identity,
        Int8Conv2d,
        nn.Identity,
    ]
    assert torch.equal(outputs(loaded, test), expected)


def test_fold_replay_refuses_a_name_that_is_no_folded_batchnorm():
    with pytest.raises(ValueError, match="BatchNorm2d"):
        TRANSFORMS["fold_batchnorm"](cnn(), {"batchnorms": ["3"]})
    with pytest.raises(ValueError, match="list of module names"):
        TRANSFORMS["fold_batchnorm"](cnn(), {"batchnorms": "2"})
    with pytest.raises(ValueError, match="follow a Conv2d"):
        TRANSFORMS["fold_batchnorm"](
            nn.Sequential(nn.BatchNorm2d(3), nn.BatchNorm2d(3)), {"batchnorms": ["1"]}
        )


@pytest.mark.parametrize("padding", [1, "same", "valid"])
def test_strided_grouped_dilated_convs_match_float(padding):
    torch.manual_seed(0)
    stride = 1 if padding == "same" else 2  # 'same' allows no stride
    conv = nn.Conv2d(8, 12, 3, stride=stride, padding=padding, dilation=2, groups=4).eval()
    x = torch.randn(4, 8, 11, 11)
    expected = conv(x).detach()
    stats = ConvStats()
    stats.update(x, expected)
    for compute in ("static", "weight_only", "dynamic"):
        layer = Int8Conv2d.from_float(conv, compute=compute, per_channel=True)
        if compute == "static":
            layer.set_activation_ranges(stats.input_range(), stats.output_range())
        for batch, reference in ((x, expected), (x[0], expected[0])):  # unbatched too
            out = layer(batch)
            assert out.shape == reference.shape
            assert (out - reference).norm() / reference.norm() < 0.05, compute


def test_static_conv_answers_in_the_layout_of_its_input_as_conv2d_does():
    conv = nn.Conv2d(4, 8, 3, padding=1)
    layer = Int8Conv2d.from_float(conv, compute="static", per_channel=True)
    layer.set_activation_ranges((-3.0, 3.0), (-3.0, 3.0))
    x = torch.randn(2, 4, 5, 5)
    assert layer(x).is_contiguous()
    assert layer(x).view(2, -1).shape == (2, 200)  # what CNN forwards often do
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert layer(channels_last).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(layer(channels_last), layer(x))


def test_dynamic_conv_computes_weight_only_and_convs_without_a_kernel_are_refused():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert Int8Conv2d.from_float(conv, compute="dynamic", per_channel=True).compute == (
        "weight_only"
    )
    with pytest.raises(ValueError, match="padding_mode"):
        Int8Conv2d.from_float(
            nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
            compute="static",
            per_channel=True,
        )
    with pytest.raises(ValueError, match="unevenly"):
        Int8Conv2d.from_float(
            nn.Conv2d(3, 4, 2, padding="same"), compute="static", per_channel=True
        )
    assert has_int8_kernel(conv) and has_int8_kernel(nn.Conv2d(3, 4, 3, padding="same"))
    assert not has_int8_kernel(nn.Conv2d(3, 4, 3, padding_mode="reflect"))
    assert not has_int8_kernel(nn.Conv2d(3, 4, 2, padding="same"))
    assert not has_int8_kernel(StandardizedConv2d(3, 4, 3))


def test_a_cnn_quantized_without_evaluation_data_succeeds_without_a_latency(tmp_path):
    # Without data there is no input to time a CNN on (its first Linear is the head).
    from .compression import compress, factory_model, job_spec

    result = compress(
        job_spec(
            factory_model(digits_cnn(), "torchyard.workloads.models:cnn"),
            tmp_path / "out",
            quantize={"mode": "weight_only"},
        )
    )
    assert "reason" not in result, result.get("message")
    assert result["compressionRatio"] > 1.2 and "speedup" not in result
