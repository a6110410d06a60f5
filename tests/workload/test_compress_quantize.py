"""Quantization with real torch: digits models, and the real all-MiniLM-L6-v2 weights."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from torchyard.api.modelversion import ArtifactSpec
from torchyard.storage import compute_digest
from torchyard.workloads.compress.qmodules import Int8Embedding, Int8Linear, Int8LSTM
from torchyard.workloads.models import load_path
from torchyard.workloads.serve.runner import load_runner

from .compression import (
    DIGITS_TEST,
    SENTENCES_TEST,
    compress,
    digits_lstm,
    digits_teacher,
    factory_model,
    job_spec,
    measure_in_fresh_process,
    minilm_dir,
    minilm_model,
)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # small models: threads only contend
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_int8_layers_store_plain_tensors_and_rebuild_from_them():
    torch.manual_seed(0)
    linear, embedding, lstm = (
        nn.Linear(16, 8),
        nn.Embedding(50, 16),
        nn.LSTM(16, 8, batch_first=True),
    )
    smoothing = torch.rand(16) + 0.5
    quantized = [
        Int8Linear.from_float(linear, compute="dynamic", per_channel=True, smoothing=smoothing),
        Int8Embedding.from_float(embedding, per_channel=True),
        Int8LSTM(lstm),
    ]
    # Built from other random layers, then filled from the state: what a replay does.
    fresh = [
        Int8Linear.from_float(
            nn.Linear(16, 8), compute="dynamic", per_channel=True, smoothing=torch.ones(16)
        ),
        Int8Embedding.from_float(nn.Embedding(50, 16), per_channel=True),
        Int8LSTM(nn.LSTM(16, 8, batch_first=True)),
    ]
    inputs = [torch.randn(4, 16), torch.randint(0, 50, (4, 5)), torch.randn(4, 5, 16)]
    for original, rebuilt, x in zip(quantized, fresh, inputs, strict=True):
        state = original.state_dict()
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        assert {v.dtype for v in state.values()} <= {torch.int8, torch.float32}
        rebuilt.load_state_dict(state)
        expected, actual = original(x), rebuilt(x)
        if isinstance(expected, tuple):
            expected, actual = expected[0], actual[0]
        assert torch.equal(expected, actual)
    # int8 stays close to the float layer it came from
    for layer, float_layer, x in zip(quantized[:2], (linear, embedding), inputs, strict=False):
        expected = float_layer(x)
        assert (layer(x) - expected).norm() / expected.norm() < 0.05


def test_bf16_compute_keeps_int8_storage_and_follows_the_float_layer():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    layer = Int8Linear.from_float(linear, compute="bf16", per_channel=True)
    assert layer.weight.dtype == torch.int8
    rebuilt = Int8Linear(64, 32, compute="bf16")
    rebuilt.load_state_dict(layer.state_dict())
    x = torch.randn(8, 64) * 10
    expected = linear(x)
    assert rebuilt(x).dtype == torch.float32
    assert torch.equal(rebuilt(x), layer(x))
    assert (layer(x) - expected).norm() / expected.norm() < 0.02


QUANTIZE_CASES = {
    "dynamic": ({"mode": "dynamic"}, 3.5),
    "dynamic-per-tensor": ({"mode": "dynamic", "granularity": "per_tensor"}, 3.5),
    "weight_only": ({"mode": "weight_only"}, 3.5),
    "static": (
        {"mode": "static", "calibration": {"uri": "builtin://digits", "maxSamples": 256}},
        3.5,
    ),
    "fp16": ({"mode": "fp16"}, 1.9),
    "bf16": ({"mode": "bf16"}, 1.9),
}


@pytest.mark.parametrize("case", sorted(QUANTIZE_CASES))
def test_quantize_a_digits_classifier(case, tmp_path):
    settings, smaller = QUANTIZE_CASES[case]
    output = tmp_path / "model"
    evaluation = {"dataset": DIGITS_TEST, "maxDrop": 0.02}
    result = compress(
        job_spec(factory_model(digits_teacher()), output, evaluation=evaluation, quantize=settings)
    )

    assert "reason" not in result, result.get("message")
    assert result["after"]["bytes"] * smaller <= result["before"]["bytes"]
    assert result["compressionRatio"] >= smaller
    assert result["metricDrop"] <= 0.02
    assert result["after"]["parameters"] == result["before"]["parameters"]
    assert result["artifact"]["digest"] == compute_digest(output)
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["format"] == "torchyard" and manifest["method"] == "quantize"
    assert manifest["figures"]["after"]["metric"] == result["after"]["metric"]


def test_dynamic_quantization_covers_lstm(tmp_path):
    output = tmp_path / "model"
    result = compress(
        job_spec(
            factory_model(digits_lstm(), "torchyard.workloads.models:lstm_classifier"),
            output,
            evaluation={"dataset": DIGITS_TEST, "maxDrop": 0.02},
            quantize={"mode": "dynamic"},
        )
    )

    assert "reason" not in result, result.get("message")
    assert result["compressionRatio"] >= 2.5  # a small model: fp32 biases weigh in
    reloaded = load_path(output, "torchyard")
    assert isinstance(reloaded.lstm, Int8LSTM) and isinstance(reloaded.head, Int8Linear)


def test_a_quantized_artifact_quantized_again_still_loads(tmp_path):
    # The second job's record names only the layers it built: the weight-only ones it
    # read stay as the first record rebuilt them.
    first, second = tmp_path / "weight-only", tmp_path / "again"
    evaluation = {"dataset": DIGITS_TEST, "maxDrop": 0.05}
    done = compress(
        job_spec(
            factory_model(digits_teacher()),
            first,
            evaluation=evaluation,
            quantize={"mode": "weight_only"},
        )
    )
    assert "reason" not in done, done.get("message")
    again = compress(
        job_spec(
            {"uri": f"file://{first}", "format": "torchyard"},
            second,
            evaluation=evaluation,
            quantize={"mode": "dynamic"},
        )
    )
    assert "reason" not in again, again.get("message")
    reloaded = load_path(second, "torchyard")
    assert all(isinstance(reloaded[i], Int8Linear) for i in (0, 2, 4))
    manifest = json.loads((second / "manifest.json").read_text())
    records = [t["layers"] for t in manifest["transforms"] if t["name"] == "quantize"]
    assert len(records) == 2 and records[1] == {}


def test_serving_warns_when_this_cpu_computes_with_fewer_activation_bits(monkeypatch, caplog):
    from torchyard.workloads.compress import qmodules
    from torchyard.workloads.serve.runner import warn_of_fewer_activation_bits

    dynamic = {"name": "quantize", "layers": {"0": {"kind": "linear", "compute": "dynamic"}}}
    measured_on_vnni = {"compression": {"int8ActivationBits": 8}, "transforms": [dynamic]}
    monkeypatch.setattr(qmodules, "full_range_activations", lambda: False)
    assert warn_of_fewer_activation_bits(measured_on_vnni)
    assert "7 bits" in caplog.text and "VNNI" in caplog.text
    monkeypatch.setattr(qmodules, "full_range_activations", lambda: True)
    assert not warn_of_fewer_activation_bits(measured_on_vnni)
    assert not warn_of_fewer_activation_bits({"compression": {"int8ActivationBits": 7}})
    monkeypatch.setattr(qmodules, "full_range_activations", lambda: False)
    weight_only = {
        "name": "quantize",
        "layers": {"0": {"kind": "linear", "compute": "weight_only"}},
    }
    assert not warn_of_fewer_activation_bits({**measured_on_vnni, "transforms": [weight_only]})
    assert not warn_of_fewer_activation_bits({})


def test_minilm_dynamic_int8_is_4x_smaller_and_faithful(tmp_path):
    """The real all-MiniLM-L6-v2: int8 Linear (dynamic, per channel, smoothed where
    activations have outliers) and int8 embeddings."""
    output = tmp_path / "minilm-int8"
    result = compress(
        job_spec(
            minilm_model(),
            output,
            evaluation={"dataset": SENTENCES_TEST, "metric": "cosine", "maxDrop": 0.02},
            quantize={
                "mode": "dynamic",
                "calibration": {"uri": "builtin://sentences", "maxSamples": 64},
            },
        )
    )

    assert "reason" not in result, result.get("message")
    assert result["compressionRatio"] >= 3.5
    assert result["minCosine"] >= 0.98
    assert result["before"]["metric"] == 1.0
    (measured,) = measure_in_fresh_process(
        {
            "artifact": str(output),
            "dataset": SENTENCES_TEST,
            "metric": "cosine",
            "original": str(minilm_dir()),
        }
    )
    assert measured["metric"] == pytest.approx(result["after"]["metric"], abs=1e-4)
    kinds = set(measured["layers"].values())
    assert {"Int8Linear", "Int8Embedding"} <= kinds and "Linear" not in kinds
    # The serving workload loads it as a text encoder.
    runner = load_runner(
        output, ArtifactSpec(uri=f"file://{output}", digest=result["artifact"]["digest"])
    )
    embedding = runner.forward({"text": ["int8 and still the same meaning"]})["embedding"]
    assert embedding.shape == (1, 384)


def test_minilm_sample_weight_only_passes_its_gate(tmp_path):
    """manifests/samples/compressionjob.yaml: weight-only int8, maxDrop 0.02 cosine."""
    result = compress(
        job_spec(
            minilm_model(),
            tmp_path / "minilm-int8",
            evaluation={"dataset": SENTENCES_TEST, "metric": "cosine", "maxDrop": 0.02},
            quantize={"mode": "weight_only", "granularity": "per_channel"},
        )
    )

    assert "reason" not in result, result.get("message")
    assert result["compressionRatio"] >= 3.5
    assert result["metricDrop"] <= 0.02
