"""The accuracy-aware quantization search: its order and stopping rules (pure), and
real searches on MiniLM and on the digits MLP."""

from __future__ import annotations

import json

import pytest

from torchyard.workloads.compress.quantize import SMOOTHING_STRENGTHS, Config
from torchyard.workloads.compress.search import (
    Target,
    Trial,
    closest,
    next_config,
    passes,
    stop_reason,
)

from .compression import (
    SENTENCES_TEST,
    compress,
    job_spec,
    minilm_model,
)

RANKING = [f"layer{i}" for i in range(16)]


def trial(config: Config, drop: float, passed: bool = False, seconds: float = 1.0) -> Trial:
    return Trial(config, drop, None, seconds, passed)


def ladder(trials_failing: int, smoothable: bool = True) -> list[Config]:
    """The configurations the search tries when none of them passes."""
    tried: list[Trial] = []
    while len(tried) < trials_failing:
        config = next_config("static", True, RANKING, tried, smoothable)
        if config is None:
            break
        # Smoothing 0.65 is the closest of the strengths: the fallbacks start from it.
        tried.append(trial(config, 0.01 if config.strength == 0.65 else 0.05 + len(tried)))
    return [t.config for t in tried]


def test_candidates_go_from_fastest_to_most_faithful():
    configs = ladder(20)
    assert [c.strength for c in configs[:4]] == list(SMOOTHING_STRENGTHS)
    assert all(not c.fallback for c in configs[:4])
    # Then the most damaged layers fall back, from the best smoothing: 1/8, 1/4, 1/2, all.
    assert [len(c.fallback) for c in configs[4:]] == [2, 4, 8, 16]
    assert all(c.strength == 0.65 for c in configs[4:])
    assert all(c.fallback == tuple(RANKING[: len(c.fallback)]) for c in configs[4:])
    assert len(configs) == 8  # and then there is nothing left to try


def test_without_outlier_channels_no_smoothing_strength_is_tried():
    configs = ladder(20, smoothable=False)
    assert [c.strength for c in configs] == [None] * 5
    assert [len(c.fallback) for c in configs] == [0, 2, 4, 8, 16]


def test_the_search_stops_at_the_first_pass_and_at_its_budgets():
    fail, ok = trial(Config("static", True), 0.05), trial(Config("static", True, 0.5), 0.0, True)
    assert stop_reason([], 8, 900, 0) is None
    assert stop_reason([fail], 8, 900, 10) is None
    assert "first to pass" in (stop_reason([fail, ok], 8, 900, 10) or "")
    assert "maxTrials (2)" in (stop_reason([fail, fail], 2, 900, 10) or "")
    # A trial took 60 s: starting one more at 850 s would end past the 900 s budget.
    slow = trial(Config("static", True), 0.05, seconds=60)
    assert "timeBudgetSeconds" in (stop_reason([slow], 8, 900, 850) or "")
    assert stop_reason([slow], 8, 900, 800) is None


def test_a_pass_needs_the_mean_and_every_sample():
    target = Target("cosine", max_drop=0.02, min_cosine=0.99)
    assert passes(target, 0.01, 0.995)
    assert not passes(target, 0.03, 0.995)  # mean fell too far
    assert not passes(target, 0.01, 0.98)  # one sample fell too far
    assert passes(Target("accuracy", 0.01), 0.005, None)
    # The best trial: a pass, else the smallest drop.
    a, b = trial(Config("static", True), 0.05), trial(Config("static", True, 0.5), 0.02)
    assert closest([a, b]) is b
    c = trial(Config("static", True, 0.8), 0.03, passed=True)
    assert closest([a, b, c]) is c


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_search_turns_a_failing_static_minilm_job_into_a_passing_one(tmp_path):
    calibration = {"uri": "builtin://sentences", "split": "train"}
    evaluation = {"dataset": SENTENCES_TEST, "metric": "cosine", "maxDrop": 0.02}
    plain = {"mode": "static", "calibration": calibration}
    failed = compress(
        job_spec(minilm_model(), tmp_path / "plain", evaluation=evaluation, quantize=plain)
    )
    assert failed["reason"] == "QualityGateFailed"
    assert not (tmp_path / "plain").exists()

    searched = compress(
        job_spec(
            minilm_model(),
            tmp_path / "searched",
            evaluation=evaluation,
            quantize={**plain, "search": {"maxTrials": 8, "timeBudgetSeconds": 900}},
        )
    )
    assert "reason" not in searched, searched.get("message")
    assert searched["metricDrop"] <= 0.02
    assert searched["compressionRatio"] >= 3.0
    summary = searched["search"]
    assert 1 <= summary["trials"] <= 8 and "first to pass" in summary["reason"]
    # Every trial's figures are in the manifest, and the chosen one is the one published.
    manifest = json.loads((tmp_path / "searched" / "manifest.json").read_text())
    record = manifest["compression"]["search"]
    assert len(record["trials"]) == summary["trials"]
    chosen = record["trials"][record["chosen"] - 1]
    assert chosen["passed"] and all(not t["passed"] for t in record["trials"][:-1])
    assert record["judgeSamples"] + record["fitSamples"] == 234
    (layers,) = [t["layers"] for t in manifest["transforms"] if t["name"] == "quantize"]
    computes = {entry.get("compute") for entry in layers.values() if entry["kind"] == "linear"}
    assert "static" in computes  # still a static model, not everything fallen back


def test_a_search_that_cannot_pass_publishes_nothing_and_says_what_it_tried(tmp_path):
    # No int8 MiniLM keeps every sentence at cosine 0.999: the one trial allowed fails.
    evaluation = {
        "dataset": SENTENCES_TEST,
        "metric": "cosine",
        "maxDrop": 0.02,
        "minCosine": 0.999,
    }
    spec = job_spec(
        minilm_model(),
        tmp_path / "out",
        evaluation=evaluation,
        quantize={"mode": "dynamic", "search": {"maxTrials": 1}},
    )
    result = compress(spec)
    assert result["reason"] == "QualityGateFailed"
    assert "< minCosine 0.999" in result["message"]
    assert "the search tried 1 configurations and kept dynamic, no smoothing" in result["message"]
    assert "maxTrials (1) reached without a pass" in result["message"]
    assert result["search"]["trials"] == 1
    assert result["minCosine"] < 0.999
    assert not (tmp_path / "out").exists()
