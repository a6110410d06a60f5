"""Accuracy-aware quantization: try configurations until one passes the quality gate.

Like Intel Neural Compressor's tuning loop, with fewer knobs and an order that puts
speed first, so the first configuration that passes is the one to keep:

1. the requested mode, no smoothing (fastest);
2. SmoothQuant smoothing at rising strengths (an extra multiply on the inputs with
   outlier channels);
3. from the best of those, the layers whose outputs moved most computed one step more
   faithfully (static -> dynamic -> bf16 where the CPU has it, else float), an eighth,
   a quarter, half, then all of them. Their weights stay int8, so every candidate is as
   small as the first.

Every candidate is built from activation statistics of three quarters of the sample data
and judged on the other quarter, against the original model's outputs: a candidate is
never judged on what it was fitted on, and the evaluation set (the gate's data) is never
seen by the search. The choice of the next candidate and the stopping rules are pure
functions (`next_config`, `stop_reason`) so that they are tested without a model.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchyard.api.compression import QuantizeSpec
from torchyard.workloads.compress.batchnorm import fold_batchnorm
from torchyard.workloads.compress.evaluate import Adapter, accuracy, cosines
from torchyard.workloads.compress.modules import get_module
from torchyard.workloads.compress.qconv import Int8Conv2d
from torchyard.workloads.compress.qmodules import INT8_COMPUTE, Int8Linear
from torchyard.workloads.compress.quantize import (
    OUTLIER_RATIO,
    SMOOTHING_STRENGTHS,
    Built,
    Config,
    LayerStats,
    Quantized,
    build,
    observe,
    quantized,
    split_samples,
)
from torchyard.workloads.datasets import Dataset, TensorData
from torchyard.workloads.report import PermanentError

FALLBACK_SHARES = (1 / 8, 1 / 4, 1 / 2, 1.0)
MIN_JUDGE_SAMPLES = 4


@dataclass(frozen=True)
class Target:
    """What a candidate must reach on the judge data (spec.evaluation's gate)."""

    metric: str
    max_drop: float
    min_cosine: float | None = None


@dataclass(frozen=True)
class Trial:
    config: Config
    drop: float
    """The gate's metric on the judge data: the original's minus the candidate's."""
    minimum: float | None
    """Lowest per-sample cosine to the original (metric cosine)."""
    seconds: float
    passed: bool
    shortfall: float = 0.0
    """How far from passing: drop over maxDrop plus minimum under minCosine."""

    def record(self) -> dict[str, Any]:
        return {
            **self.config.record(),
            "drop": round(self.drop, 6),
            "minCosine": None if self.minimum is None else round(self.minimum, 6),
            "seconds": round(self.seconds, 2),
            "passed": self.passed,
        }


def passes(target: Target, drop: float, minimum: float | None) -> bool:
    # Written so that NaN (a model whose outputs overflowed) never passes.
    if not drop <= target.max_drop:
        return False
    return target.min_cosine is None or (minimum is not None and minimum >= target.min_cosine)


def shortfall(target: Target, drop: float, minimum: float | None) -> float:
    if math.isnan(drop) or (minimum is not None and math.isnan(minimum)):
        return math.inf
    under = 0.0
    if target.min_cosine is not None and minimum is not None:
        under = max(0.0, target.min_cosine - minimum)
    return max(0.0, drop - target.max_drop) + under


def strengths(smoothable: bool) -> tuple[float | None, ...]:
    """Smoothing strengths worth a trial: only None when no input has outlier channels
    (every strength would build the same model)."""
    return SMOOTHING_STRENGTHS if smoothable else (None,)


def strengths_left(trials: Sequence[Trial], smoothable: bool) -> bool:
    tried = {trial.config.strength for trial in trials if not trial.config.fallback}
    return any(strength not in tried for strength in strengths(smoothable))


def next_config(
    mode: str,
    per_channel: bool,
    ranking: Sequence[str],
    trials: Sequence[Trial],
    smoothable: bool = True,
) -> Config | None:
    """The next candidate after `trials`, or None when there is nothing left to try.

    `ranking` lists the quantized layers, the most damaged first; it is only read once
    the smoothing strengths have all been tried."""
    tried = {trial.config for trial in trials}
    for strength in strengths(smoothable):
        config = Config(mode, per_channel, strength)
        if config not in tried:
            return config
    strength = closest(trials).config.strength if trials else None
    for share in FALLBACK_SHARES:
        count = min(len(ranking), math.ceil(share * len(ranking)))
        config = Config(mode, per_channel, strength, tuple(ranking[:count]))
        if count and config not in tried:
            return config
    return None


def closest(trials: Sequence[Trial]) -> Trial:
    """The trial closest to passing: a pass, else the smallest shortfall (how far its
    drop and its minimum are from the target together), then the smallest drop."""
    return min(trials, key=lambda t: (not t.passed, t.shortfall, t.drop))


def stop_reason(
    trials: Sequence[Trial], max_trials: int, budget_s: float, elapsed_s: float
) -> str | None:
    """Why the search stops now, or None to go on."""
    if trials and trials[-1].passed:
        return f"trial {len(trials)} is the first to pass the quality gate"
    if len(trials) >= max_trials:
        return f"maxTrials ({max_trials}) reached without a pass"
    longest = max((trial.seconds for trial in trials), default=0.0)
    if trials and elapsed_s + longest > budget_s:
        return f"timeBudgetSeconds ({budget_s:g}) would be exceeded by another trial"
    return None


# -- running it on a model ----------------------------------------------------------------


class Judge:
    """Scores candidates on the held-out quarter against the original model."""

    def __init__(self, model: nn.Module, adapter: Adapter, data: Dataset, target: Target) -> None:
        self.adapter, self.data, self.target = adapter, data, target
        self.reference = adapter.predict(model, data)
        # Accuracy on the labelled samples (label -1 marks an unlabelled one); where none
        # is labelled, agreement with the original's classes stands for it.
        labels = data.labels if isinstance(data, TensorData) else None
        labelled = labels >= 0 if labels is not None else None
        if labels is None or labelled is None or not bool(labelled.any()):
            labels, labelled = self.reference.argmax(dim=1), None
        self.labels, self.labelled = labels, labelled
        self.original = self._metric(self.reference)

    def _metric(self, outputs: torch.Tensor) -> float:
        if self.target.metric == "cosine":
            return float(cosines(outputs, self.reference).mean())
        if self.labelled is not None:
            return accuracy(outputs[self.labelled], self.labels[self.labelled])
        return accuracy(outputs, self.labels)

    def __call__(self, model: nn.Module) -> tuple[float, float | None]:
        outputs = self.adapter.predict(model, self.data)
        minimum = None
        if self.target.metric == "cosine":
            minimum = float(cosines(outputs, self.reference).min())
        return self.original - self._metric(outputs), minimum


def damage_ranking(
    original: nn.Module, candidate: nn.Module, adapter: Adapter, data: Dataset
) -> list[str]:
    """Int8-computing layers of `candidate` (Linear, Conv2d), those whose output moved most
    from the float layer's on the same input first (relative squared error, summed over
    `data`)."""
    errors: dict[str, float] = {}

    def hook(name: str, float_layer: nn.Module) -> Any:
        def record(_: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            exact = float_layer(inputs[0].float())
            error = float(
                (output.float() - exact).pow(2).sum() / exact.pow(2).sum().clamp_min(1e-12)
            )
            errors[name] = errors.get(name, 0.0) + error

        return record

    handles = []
    for name, module in candidate.named_modules():
        if isinstance(module, Int8Linear | Int8Conv2d) and module.compute in INT8_COMPUTE:
            handles.append(module.register_forward_hook(hook(name, get_module(original, name))))
    try:
        adapter.predict(candidate, data)
    finally:
        for handle in handles:
            handle.remove()
    return sorted(errors, key=lambda name: -errors[name])


def search(
    model: nn.Module,
    spec: QuantizeSpec,
    adapter: Adapter,
    samples: Dataset,
    target: Target,
    clock: Callable[[], float] = time.monotonic,
) -> Quantized:
    """The first candidate that passes `target` on held-out samples, else the best one
    (the job's quality gate then refuses it, with every trial's figures)."""
    assert spec.search is not None
    fit, held_out = split_samples(samples)
    if len(held_out) < MIN_JUDGE_SAMPLES:
        raise PermanentError(
            "InvalidSpec",
            f"spec.quantize.calibration: the search judges candidates on a quarter of the "
            f"sample data, which holds {len(held_out)} of {len(samples)} samples; it needs "
            f"{MIN_JUDGE_SAMPLES}: give quantize.calibration more samples",
        )
    began = clock()
    model, folded = fold_batchnorm(copy.deepcopy(model))
    stats = observe(model, adapter, fit)
    smoothable = any(
        isinstance(layer, LayerStats) and layer.outlier_ratio() >= OUTLIER_RATIO
        for layer in stats.values()
    )
    judge = Judge(model, adapter, held_out, target)
    per_channel = spec.granularity == "per_channel"
    trials: list[Trial] = []
    best: Built | None = None
    ranking: list[str] | None = None
    limits = (spec.search.max_trials, spec.search.time_budget_seconds)
    while (reason := stop_reason(trials, *limits, clock() - began)) is None:
        if ranking is None and trials and not strengths_left(trials, smoothable):
            assert best is not None
            # On as many fit rows as the judge has: the ranking's time stays a trial's.
            ranking = damage_ranking(model, best.model, adapter, fit.rows(0, len(held_out)))
        config = next_config(spec.mode, per_channel, ranking or [], trials, smoothable)
        if config is None:
            reason = "every candidate was tried without a pass"
            break
        started = clock()
        candidate = build(model, config, stats)
        drop, minimum = judge(candidate.model)
        passed = passes(target, drop, minimum)
        missing = shortfall(target, drop, minimum)
        trials.append(Trial(config, drop, minimum, clock() - started, passed, missing))
        if closest(trials) is trials[-1]:
            best = candidate
    chosen = closest(trials)
    record = {
        "trials": [trial.record() for trial in trials],
        "chosen": trials.index(chosen) + 1,
        "reason": reason,
        "fitSamples": len(fit),
        "judgeSamples": len(held_out),
        "seconds": round(clock() - began, 1),
    }
    summary = {"trials": len(trials), "chosen": chosen.config.summary(), "reason": reason}
    details = {"search": record, "searchSummary": summary}
    assert best is not None  # at least one trial ran: stop_reason never stops before one
    return quantized(best, chosen.config, details, folded)
