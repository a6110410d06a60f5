"""The compress workload's contract with the operator, end to end: spec in
TORCHYARD_SPEC, JSON result (< 4 KiB) in the termination log, exit 0 / 3 (permanent) /
other (transient), an artifact only when the quality gate passes, and artifacts that a
fresh process reloads to the reported metric."""

from __future__ import annotations

import json

import pytest
import torch

from torchyard.api.common import DatasetSource
from torchyard.api.compression import CompressionResult
from torchyard.storage import compute_digest
from torchyard.workloads.compress import main
from torchyard.workloads.datasets import TextData, load_dataset
from torchyard.workloads.report import MAX_MESSAGE_BYTES, PERMANENT

from .compression import (
    DIGITS_TEST,
    compress,
    digits_cnn,
    digits_teacher,
    factory_model,
    job_spec,
    measure_in_fresh_process,
    run_as_pod,
)

GATE = {"dataset": DIGITS_TEST, "maxDrop": 0.02}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_pod_command_publishes_an_artifact_and_reports_it(tmp_path):
    output = tmp_path / "model"
    spec = job_spec(
        factory_model(digits_teacher()), output, evaluation=GATE, quantize={"mode": "dynamic"}
    )

    pod = run_as_pod(spec, tmp_path)

    assert pod.returncode == 0, pod.log[-3000:]
    assert pod.message_bytes < MAX_MESSAGE_BYTES
    result = pod.result
    # What the controller copies into status.result parses as the API's type.
    status = CompressionResult.model_validate(
        {
            k: result[k]
            for k in ("artifact", "before", "after", "compressionRatio", "speedup", "metricDrop")
        }
    )
    assert status.artifact is not None and status.before is not None and status.after is not None
    assert status.artifact.uri == f"file://{output}"
    assert status.artifact.digest == compute_digest(output)
    assert status.artifact.format == "torchyard"
    assert status.compression_ratio == pytest.approx(
        status.before.bytes / status.after.bytes, rel=1e-3
    )
    assert status.metric_drop == pytest.approx(status.before.metric - status.after.metric, abs=1e-5)
    assert status.after.latency_ms and status.before.latency_ms
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["figures"]["after"] == result["after"]
    assert manifest["source"]["uri"] == spec["model"]["uri"]


def test_a_failed_quality_gate_exits_3_and_publishes_nothing(tmp_path):
    output = tmp_path / "model"
    spec = job_spec(
        factory_model(digits_teacher()),
        output,
        evaluation={"dataset": DIGITS_TEST, "maxDrop": 0.0},
        prune={"sparsity": 0.95},  # one-shot, no fine-tuning: accuracy collapses
    )

    pod = run_as_pod(spec, tmp_path)

    assert pod.returncode == PERMANENT
    assert pod.result["reason"] == "QualityGateFailed"
    assert "artifact" not in pod.result
    assert pod.result["after"]["metric"] < pod.result["before"]["metric"]
    assert f"{pod.result['after']['metric']:.4f}" in pod.result["message"]  # figures, in words
    assert not output.exists()
    assert not list(tmp_path.glob(".*.partial"))  # no staging left either


def test_a_second_job_into_the_same_output_fails_with_output_exists(tmp_path):
    """Published artifacts are immutable: another job's pod fails at once (exit 3,
    OutputExists) and leaves the artifact and its digest as they were; the same job's
    retry may publish again; output.overwrite replaces it."""
    output = tmp_path / "model"
    quantized = job_spec(factory_model(digits_teacher()), output, quantize={"mode": "dynamic"})
    first = run_as_pod(quantized, tmp_path, job=("first", "uid-first"))
    assert first.returncode == 0, first.log[-3000:]
    digest = first.result["artifact"]["digest"]

    retried = run_as_pod(quantized, tmp_path, job=("first", "uid-first"))
    assert retried.returncode == 0, retried.log[-3000:]  # its own artifact

    pruned = job_spec(factory_model(digits_teacher()), output, prune={"sparsity": 0.5})
    second = run_as_pod(pruned, tmp_path, job=("second", "uid-second"))
    assert second.returncode == PERMANENT
    assert second.result["reason"] == "OutputExists"
    assert f"file://{output}" in second.result["message"]
    assert "CompressionJob/first" in second.result["message"]
    assert "measuring" not in second.log  # refused before any work
    assert compute_digest(output) == retried.result["artifact"]["digest"]
    assert json.loads((output / "manifest.json").read_text())["producedBy"]["uid"] == "uid-first"

    pruned["output"]["overwrite"] = True
    replaced = run_as_pod(pruned, tmp_path, job=("second", "uid-second"))
    assert replaced.returncode == 0, replaced.log[-3000:]
    assert replaced.result["artifact"]["digest"] == compute_digest(output) != digest
    assert json.loads((output / "manifest.json").read_text())["method"] == "prune"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_missing_model_fails_permanently_before_any_work(tmp_path):
    spec = job_spec(
        factory_model(tmp_path / "nowhere.safetensors"),
        tmp_path / "model",
        # A dataset that does not exist either: the model is checked first.
        evaluation={"dataset": {"uri": f"file://{tmp_path}/missing.pt"}},
        quantize={"mode": "dynamic"},
    )

    pod = run_as_pod(spec, tmp_path)

    assert pod.returncode == PERMANENT
    assert pod.result["reason"] == "ModelNotFound"
    assert "nowhere.safetensors" in pod.result["message"]
    assert "measuring" not in pod.log  # failed before loading anything


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"prune": {"sparsity": 1.5}}, "InvalidSpec", "spec.prune.sparsity"),
        ({"model": {"format": "torchscript"}}, "UnsupportedModel", "TorchScript"),
        ({"model": {"digest": "sha256:" + "0" * 64}}, "DigestMismatch", "digest"),
        ({"model": {"factory": "os:system"}}, "FactoryNotAllowed", "'os:system'"),
        (
            {"evaluation": {"dataset": {"uri": "file:///no/such/data.pt"}}},
            "DatasetUnavailable",
            "data.pt",
        ),
        ({"evaluation": {"dataset": {"uri": "builtin://sentences"}}}, "InvalidSpec", "holds text"),
    ],
)
def test_permanent_errors_exit_3_with_a_reason(change, reason, words, tmp_path, monkeypatch):
    spec = job_spec(
        factory_model(digits_teacher()),
        tmp_path / "model",
        evaluation={"dataset": DIGITS_TEST},
        prune={"sparsity": 0.5},
    )
    for key, value in change.items():
        spec[key] = {**spec[key], **value}
    if spec["model"]["format"] == "torchscript":
        del spec["model"]["factory"]
    log = tmp_path / "termination-log"
    monkeypatch.setenv("TORCHYARD_SPEC", json.dumps(spec))
    monkeypatch.setenv("TORCHYARD_TERMINATION_LOG", str(log))

    assert main([]) == PERMANENT
    result = json.loads(log.read_text())
    assert result["reason"] == reason
    assert words in result["message"]
    assert not (tmp_path / "model").exists()


def test_every_methods_artifact_reloads_in_a_fresh_process(tmp_path):
    specs = {
        "dynamic": {"quantize": {"mode": "dynamic"}},
        "static": {"quantize": {"mode": "static", "calibration": {"uri": "builtin://digits"}}},
        "bf16": {"quantize": {"mode": "bf16"}},
        "unstructured": {"prune": {"sparsity": 0.5}},
        "neurons": {"prune": {"kind": "structured", "sparsity": 0.5, "fineTuneSteps": 50}},
        "distilled": {
            "distill": {
                "studentRule": {"widthFraction": 0.5},
                "dataset": {"uri": "builtin://digits"},
            }
        },
    }
    reported = {}
    for name, block in specs.items():
        result = compress(
            job_spec(factory_model(digits_teacher()), tmp_path / name, evaluation=GATE, **block)
        )
        assert "reason" not in result, (name, result.get("message"))
        reported[name] = result["after"]["metric"]
    cnn = compress(
        job_spec(
            factory_model(digits_cnn(), "torchyard.workloads.models:cnn"),
            tmp_path / "channels",
            evaluation={"dataset": DIGITS_TEST, "maxDrop": 1.0},
            prune={"kind": "structured", "target": "channels", "sparsity": 0.5},
        )
    )
    reported["channels"] = cnn["after"]["metric"]
    # A CNN quantized static: BatchNorm folded into int8 convs, rebuilt from the manifest.
    conv = compress(
        job_spec(
            factory_model(digits_cnn(), "torchyard.workloads.models:cnn"),
            tmp_path / "conv-int8",
            evaluation={"dataset": DIGITS_TEST, "maxDrop": 0.01},
            quantize={
                "mode": "static",
                "calibration": {"uri": "builtin://digits", "maxSamples": 256},
                "search": {"maxTrials": 4},
            },
        )
    )
    assert "reason" not in conv, conv.get("message")
    reported["conv-int8"] = conv["after"]["metric"]

    measured = measure_in_fresh_process(
        *(
            {"artifact": str(tmp_path / name), "dataset": DIGITS_TEST, "metric": "accuracy"}
            for name in reported
        )
    )

    for (name, metric), fresh in zip(reported.items(), measured, strict=True):
        assert fresh["metric"] == pytest.approx(metric, abs=1e-6), name
    by_name = dict(zip(reported, measured, strict=True))
    assert set(by_name["dynamic"]["layers"].values()) == {"Int8Linear", "ReLU"}
    assert by_name["neurons"]["shapes"]["0.weight"] == [128, 64]
    assert by_name["distilled"]["shapes"]["0.weight"][0] == 128
    conv_layers = by_name["conv-int8"]["layers"]
    assert conv_layers["1"] == conv_layers["4"] == "Int8Conv2d"
    assert conv_layers["2"] == conv_layers["5"] == "Identity"  # the folded BatchNorms


def test_builtin_sentences_are_a_fixed_split():
    train = load_dataset(DatasetSource(uri="builtin://sentences", split="train"))
    test = load_dataset(DatasetSource(uri="builtin://sentences", split="test"))
    again = load_dataset(DatasetSource(uri="builtin://sentences", split="test"))
    assert isinstance(train, TextData) and isinstance(test, TextData)
    assert test == again
    assert not set(train.texts) & set(test.texts)
    assert len(train) + len(test) >= 250
    assert len(test) >= 32  # one full evaluation batch
    assert torch.tensor([len(t.split()) for t in test.texts]).float().std() > 3  # varied
