"""Pruning with real torch: a digits MLP and CNN, and the real all-MiniLM-L6-v2."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file
from torch import nn

from torchyard.workloads.models import load_path

from .compression import (
    DIGITS_TEST,
    SENTENCES_TEST,
    compress,
    digits_cnn,
    digits_teacher,
    factory_model,
    job_spec,
    minilm_model,
)

ONE_POINT = {"dataset": DIGITS_TEST, "maxDrop": 0.01}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_half_of_the_weights_within_one_point(scope, tmp_path):
    output = tmp_path / "model"
    result = compress(
        job_spec(
            factory_model(digits_teacher()),
            output,
            evaluation=ONE_POINT,
            prune={"sparsity": 0.5, "scope": scope, "fineTuneSteps": 100},
        )
    )

    assert "reason" not in result, result.get("message")
    assert result["metricDrop"] <= 0.01
    assert result["after"]["sparsity"] == pytest.approx(0.5, abs=0.001)
    per_layer = result["perLayerSparsity"]
    if scope == "layer":
        assert all(value == pytest.approx(0.5, abs=0.001) for value in per_layer.values())
    else:  # ranked across the model: layers lose different shares
        assert len(set(per_layer.values())) > 1
    # The masks are permanent: no weight_orig/weight_mask, no bigger than before.
    weights = load_file(str(output / "weights.safetensors"))
    assert not [key for key in weights if key.endswith(("_orig", "_mask"))]
    assert result["after"]["bytes"] <= result["before"]["bytes"]
    assert result["after"]["parameters"] == result["before"]["parameters"]


def test_structured_neurons_really_shrink_the_mlp(tmp_path):
    output = tmp_path / "model"
    result = compress(
        job_spec(
            factory_model(digits_teacher()),
            output,
            evaluation={"dataset": DIGITS_TEST, "maxDrop": 0.02},
            prune={"kind": "structured", "sparsity": 0.5, "fineTuneSteps": 100},
        )
    )

    assert "reason" not in result, result.get("message")
    assert result["after"]["parameters"] < 0.4 * result["before"]["parameters"]
    assert result["compressionRatio"] > 2.5
    model = load_path(output, "torchyard")
    widths = [layer.out_features for layer in model if isinstance(layer, nn.Linear)]
    assert widths == [128, 64, 10]  # 256 and 128 hidden neurons halved, classes kept


def test_structured_channels_slice_convolutions_and_batch_norms(tmp_path):
    output = tmp_path / "model"
    result = compress(
        job_spec(
            factory_model(digits_cnn(), "torchyard.workloads.models:cnn"),
            output,
            evaluation={"dataset": DIGITS_TEST, "maxDrop": 0.05},
            prune={
                "kind": "structured",
                "target": "channels",
                "sparsity": 0.5,
                "fineTuneSteps": 50,
            },
        )
    )

    assert "reason" not in result, result.get("message")
    model = load_path(output, "torchyard")
    convs = [layer.out_channels for layer in model if isinstance(layer, nn.Conv2d)]
    norms = [layer.num_features for layer in model if isinstance(layer, nn.BatchNorm2d)]
    assert convs == norms == [8, 16]
    assert model[-1].in_features == 16 * 8 * 8  # the Linear after Flatten follows
    assert result["after"]["parameters"] < 0.6 * result["before"]["parameters"]


def test_structured_heads_of_the_real_minilm(tmp_path):
    output = tmp_path / "model"
    quick = {**SENTENCES_TEST, "maxSamples": 16}
    result = compress(
        job_spec(
            minilm_model(),
            output,
            evaluation={"dataset": quick, "metric": "cosine", "maxDrop": 1.0},
            prune={"kind": "structured", "target": "heads", "sparsity": 0.25},
        )
    )

    assert "reason" not in result, result.get("message")
    model = load_path(output, "torchyard")
    for layer in model.encoder.layer:
        assert layer.attention.self.query.out_features == 9 * 32  # 12 heads of 32 -> 9
        assert layer.attention.output.dense.in_features == 9 * 32
    assert result["after"]["parameters"] < result["before"]["parameters"]
    assert 0 < result["after"]["metric"] < 1


def test_nothing_to_prune_is_a_permanent_error(tmp_path):
    result = compress(
        job_spec(
            factory_model(digits_teacher()),
            tmp_path / "model",
            prune={"kind": "structured", "target": "heads", "sparsity": 0.5},
        )
    )

    assert result["reason"] == "UnsupportedModel"
    assert "heads" in result["message"]
    assert not (tmp_path / "model").exists()
