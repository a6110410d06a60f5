"""Distillation with real torch: digits (few labels, a larger unlabelled transfer set)
and a shallower all-MiniLM-L6-v2."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from torchyard.api.common import DatasetSource
from torchyard.api.compression import StudentRule
from torchyard.workloads.compress.distill import derive_student
from torchyard.workloads.compress.evaluate import TextAdapter, quality
from torchyard.workloads.datasets import UNLABELLED, load_dataset
from torchyard.workloads.models import load_path, mlp

from .compression import (
    DIGITS_TEST,
    SENTENCES_TEST,
    compress,
    digits,
    digits_teacher,
    factory_model,
    job_spec,
    minilm_dir,
    minilm_model,
)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def small_mlp() -> nn.Module:
    """A student given as its own model source (factory + weights)."""
    return mlp(hidden=(32,))


@pytest.fixture
def few_labels(tmp_path):
    """The digits train split with 5 labels per class; the rest is unlabelled."""
    data = digits().keep_labels(per_class=5)
    assert data.labels is not None
    assert int((data.labels != UNLABELLED).sum()) == 50
    path = tmp_path / "transfer.safetensors"
    data.save(path)
    return f"file://{path}"


def test_a_distilled_student_beats_the_same_student_without_teacher(few_labels, tmp_path):
    settings = {
        "studentRule": {"layerFraction": 0.5, "widthFraction": 0.25},
        "dataset": {"uri": few_labels},
        "epochs": 20,
    }
    runs = {}
    for name, alpha in (("taught", 0.9), ("alone", 0.0)):  # alpha 0: labels only
        runs[name] = compress(
            job_spec(
                factory_model(digits_teacher()),
                tmp_path / name,
                evaluation={"dataset": DIGITS_TEST, "maxDrop": 1.0},
                distill={**settings, "alpha": alpha},
            )
        )
    taught, alone = runs["taught"], runs["alone"]
    assert "reason" not in taught, taught.get("message")

    teacher = taught["before"]
    assert taught["after"]["parameters"] <= 0.25 * teacher["parameters"]
    assert taught["after"]["parameters"] == alone["after"]["parameters"]  # the same student
    assert taught["after"]["metric"] >= 0.95 * teacher["metric"]
    assert taught["after"]["metric"] > alone["after"]["metric"]
    student = load_path(tmp_path / "taught", "torchyard")
    assert [m.out_features for m in student if isinstance(m, nn.Linear)] == [64, 10]


def test_a_given_student_model(tmp_path, monkeypatch):
    # The student's factory is not torchyard's: the administrator allows it (the operator
    # passes its --allowed-factories to the job's pod in this variable).
    monkeypatch.setenv("TORCHYARD_ALLOWED_FACTORIES", "tests.workload.test_compress_distill:*")
    torch.manual_seed(0)
    weights = tmp_path / "student.safetensors"
    save_file(small_mlp().state_dict(), str(weights))
    output = tmp_path / "model"
    result = compress(
        job_spec(
            factory_model(digits_teacher()),
            output,
            evaluation={"dataset": DIGITS_TEST, "maxDrop": 0.05},
            distill={
                "student": factory_model(weights, "tests.workload.test_compress_distill:small_mlp"),
                "dataset": {"uri": "builtin://digits"},
                "epochs": 30,
            },
        )
    )

    assert "reason" not in result, result.get("message")
    assert result["after"]["parameters"] == sum(p.numel() for p in small_mlp().parameters())
    reloaded = load_path(output, "torchyard")  # rebuilt from the student's factory
    assert reloaded[0].out_features == 32


def test_a_shallower_minilm_learns_the_teachers_embeddings(tmp_path):
    quick_test = {**SENTENCES_TEST, "maxSamples": 16}
    rule = {"layerFraction": 0.5}
    output = tmp_path / "model"
    result = compress(
        job_spec(
            minilm_model(),
            output,
            evaluation={"dataset": quick_test, "metric": "cosine", "maxDrop": 1.0},
            distill={
                "studentRule": rule,
                "dataset": {"uri": "builtin://sentences", "maxSamples": 64},
                "epochs": 2,
                "learningRate": 3e-4,
            },
        )
    )

    assert "reason" not in result, result.get("message")
    student = load_path(output, "torchyard")
    assert len(student.encoder.layer) == 3
    assert student.config.num_hidden_layers == 3
    assert result["after"]["parameters"] < result["before"]["parameters"]
    # Compared with the same student before training (layers 0, 2, 4 of the teacher):
    teacher = load_path(minilm_dir(), "huggingface")
    untrained, _ = derive_student(teacher, StudentRule.model_validate(rule))
    adapter = TextAdapter(minilm_dir())
    data = load_dataset(DatasetSource.model_validate(quick_test))
    before = quality(untrained, adapter, data, "cosine", adapter.predict(teacher, data))
    assert result["after"]["metric"] > before.metric
