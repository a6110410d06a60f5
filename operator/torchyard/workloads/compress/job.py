"""One CompressionJob run: load, measure, compress, measure again, gate, publish, report.

Contract with the operator (torchyard.workloads.report): the spec arrives as camelCase
JSON in TORCHYARD_SPEC; the result goes to the termination message (< 4 KiB) with the
keys the controller copies into status.result (artifact, before, after,
compressionRatio, speedup, metricDrop); exit 0 on success, 3 on a permanent failure
(InvalidSpec, OutputExists, ModelNotFound, DigestMismatch, InvalidModel,
UnsupportedModel, DatasetUnavailable, QualityGateFailed — no artifact is published),
anything else is transient and retried. Per-layer tables go into the artifact's manifest.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchyard.api.common import DatasetSource
from torchyard.api.compression import CompressionJobSpec, Figures
from torchyard.storage import Artifact
from torchyard.validation import InvalidSpec, parse_spec
from torchyard.workloads.artifacts import FORMAT, output_is_free, save_artifact
from torchyard.workloads.compress import distill as distillation
from torchyard.workloads.compress.attention import choose_attention
from torchyard.workloads.compress.evaluate import (
    BATCH_SIZE,
    Adapter,
    Batch,
    Quality,
    TensorAdapter,
    TextAdapter,
    compute_threads,
    figures,
    median_latencies_ms,
    quality,
)
from torchyard.workloads.compress.fit import label_loss, match_loss, train
from torchyard.workloads.compress.modules import WEIGHTED, sparsity
from torchyard.workloads.compress.prune import prune
from torchyard.workloads.compress.qmodules import describe_cpu
from torchyard.workloads.compress.quantize import quantize
from torchyard.workloads.compress.search import Target, search
from torchyard.workloads.compress.source import Source, open_source
from torchyard.workloads.datasets import (
    Dataset,
    DatasetError,
    TensorData,
    TextData,
    load_dataset,
)
from torchyard.workloads.report import PERMANENT, PermanentError, read_spec, write_result

log = logging.getLogger("torchyard.compress")

# Calibration samples taken from the evaluation set's train split when the spec names no
# calibration set: enough to see activation outliers, few enough to stay quick.
DEFAULT_CALIBRATION = 128
FINE_TUNE_LEARNING_RATE = 1e-3
SMALL_TABLE = 12  # per-layer sparsity goes into the termination message up to this many


@dataclass
class Compressed:
    model: nn.Module
    source: Source  # base and transforms the artifact starts from
    transforms: list[dict[str, Any]]
    details: dict[str, Any]


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="torchyard workload compress",
        description="Run the CompressionJob in TORCHYARD_SPEC (see torchyard.workloads.report).",
    ).parse_args(argv or [])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s compress %(levelname)s %(message)s")
    try:
        spec = _spec()
        result = run(spec)
    except PermanentError as error:
        log.error("%s: %s", error.reason, error)
        write_result({"reason": error.reason, "message": str(error)[:2000], **error.details})
        return PERMANENT
    except Exception as error:  # transient: the operator retries up to backoffLimit
        traceback.print_exc()
        write_result({"reason": type(error).__name__, "message": str(error)[:2000]})
        return 1
    write_result(result)
    return 0


def _spec() -> CompressionJobSpec:
    try:
        return parse_spec(CompressionJobSpec, read_spec())
    except (InvalidSpec, ValueError) as error:
        raise PermanentError("InvalidSpec", str(error)) from None


def run(spec: CompressionJobSpec) -> dict[str, Any]:
    """Compress as the spec says; return the result (raise PermanentError on failure)."""
    torch.set_num_threads(compute_threads())
    torch.manual_seed(0)
    output_is_free(spec.output)  # first: an output that exists fails before any work
    source = open_source(spec.model)  # a missing model, too
    adapter = _adapter(source)
    test = None
    if spec.evaluation is not None:
        test = _dataset(spec.evaluation.dataset, adapter, "evaluation.dataset")
    metric = spec.evaluation.metric if spec.evaluation else None
    log.info("measuring the original model")
    original = _quality(source.model, adapter, test, metric, None)

    log.info("compressing: %s", spec.method)
    try:
        compressed = _compress(spec, source, adapter)
    except ValueError as error:  # the method does not apply to this model
        raise PermanentError("UnsupportedModel", str(error)) from None

    batch = _latency_batch(adapter, source.model, test)
    if batch is not None:
        # Both models run their fastest attention kernel, so that the speedup is the
        # compression's alone.
        _, original_attention = choose_attention(source.model, adapter, batch)
        transforms, attention = choose_attention(compressed.model, adapter, batch)
        compressed.transforms += transforms
        if attention:
            compressed.details["attention"] = {**attention, "original": original_attention}

    log.info("measuring the compressed model")
    reference = original.outputs if original is not None else None
    changed = _quality(compressed.model, adapter, test, metric, reference)
    latencies: list[float | None] = [None, None]
    if batch is not None:
        latencies = list(median_latencies_ms([source.model, compressed.model], adapter, batch))
    before = figures(source.model, latencies[0], original.metric if original else None)
    after = figures(compressed.model, latencies[1], changed.metric if changed else None)
    result = _result(spec, compressed.model, before, after, changed)
    result["measuredOn"] = _measured_on(spec, test, batch)
    if "searchSummary" in compressed.details:
        result["search"] = compressed.details.pop("searchSummary")
    _gate(spec, result, before, after)
    artifact = _publish(spec, compressed, before, after, test)
    result["artifact"] = {
        "uri": artifact.uri,
        "digest": artifact.digest,
        "bytes": artifact.bytes,
        "format": FORMAT,
    }
    result["input"] = {"uri": spec.model.uri, "digest": source.digest}
    return result


def _gate(
    spec: CompressionJobSpec, result: dict[str, Any], before: Figures, after: Figures
) -> None:
    """Refuse a model whose metric fell by more than maxDrop, or one sample of which fell
    below minCosine: nothing is published."""
    if spec.evaluation is None:
        return
    evaluation, problems = spec.evaluation, []
    if not result["metricDrop"] <= evaluation.max_drop:  # NaN outputs fail too
        problems.append(
            f"{evaluation.metric} fell from {before.metric:.4f} to {after.metric:.4f} "
            f"(drop {result['metricDrop']:.4f} > maxDrop {evaluation.max_drop})"
        )
    lowest = result.get("minCosine")
    if (
        evaluation.min_cosine is not None
        and lowest is not None
        and not lowest >= evaluation.min_cosine
    ):
        problems.append(
            f"a sample's cosine fell to {lowest:.4f} (< minCosine {evaluation.min_cosine})"
        )
    if not problems:
        return
    tried = result.get("search")
    searched = ""
    if tried:
        searched = (
            f"; the search tried {tried['trials']} configurations and kept "
            f"{tried['chosen']} (on its held-out calibration quarter: {tried['reason']})"
        )
    raise PermanentError(
        "QualityGateFailed",
        f"{'; '.join(problems)}; size {before.bytes} -> {after.bytes} bytes, latency "
        f"{before.latency_ms} -> {after.latency_ms} ms{searched}; no artifact was published",
        details=result,
    )


def _publish(
    spec: CompressionJobSpec,
    compressed: Compressed,
    before: Figures,
    after: Figures,
    test: Dataset | None,
) -> Artifact:
    """Write the artifact atomically, with the full report in its manifest."""
    manifest: dict[str, Any] = {
        "source": {"uri": spec.model.uri, "format": spec.model.format},
        "method": spec.method,
        "settings": getattr(spec, spec.method).to_k8s(),
        "figures": {"before": before.to_k8s(), "after": after.to_k8s()},
        "compression": compressed.details,
        "perLayerSparsity": sparsity(compressed.model)[1],
    }
    if spec.evaluation is not None:
        manifest["evaluation"] = spec.evaluation.to_k8s()
    if isinstance(test, TensorData):  # tells the serving workload the input's shape
        shape = [-1, *test.features.shape[1:]]
        manifest["signature"] = {"inputs": [{"name": "input", "datatype": "FP32", "shape": shape}]}
    artifact = save_artifact(
        spec.output.uri,
        compressed.model,
        base=compressed.source.base,
        transforms=compressed.source.transforms + compressed.transforms,
        extra=manifest,
        base_files=compressed.source.base_files,
        overwrite=spec.output.overwrite,
    )
    log.info("published %s (%s)", artifact.uri, artifact.digest)
    return artifact


# -- the three methods --------------------------------------------------------------------


def _compress(spec: CompressionJobSpec, source: Source, adapter: Adapter) -> Compressed:
    if spec.method == "quantize":
        assert spec.quantize is not None
        samples = _calibration(spec, adapter)
        if spec.quantize.search is not None:
            assert spec.evaluation is not None and samples is not None  # the API ensures it
            evaluation = spec.evaluation
            target = Target(evaluation.metric, evaluation.max_drop, evaluation.min_cosine)
            quantized = search(source.model, spec.quantize, adapter, samples, target)
        else:
            quantized = quantize(source.model, spec.quantize, adapter, samples)
        return Compressed(quantized.model, source, quantized.transforms, quantized.details)
    if spec.method == "prune":
        assert spec.prune is not None
        steps = spec.prune.fine_tune_steps
        fine_tune = _fine_tuner(spec, source.model, adapter, steps) if steps else None
        pruned = prune(source.model, spec.prune, fine_tune)
        return Compressed(pruned.model, source, pruned.transforms, pruned.details)
    return _distill(spec, source, adapter)


def _calibration(spec: CompressionJobSpec, adapter: Adapter) -> Dataset | None:
    assert spec.quantize is not None
    if spec.quantize.mode not in ("dynamic", "static"):
        return None  # weight-only and casts leave activations alone: nothing to observe
    if spec.quantize.calibration is not None:
        return _dataset(spec.quantize.calibration, adapter, "quantize.calibration")
    if spec.evaluation is not None:
        calibration = _train_split(spec.evaluation.dataset, DEFAULT_CALIBRATION)
        return _dataset(calibration, adapter, "evaluation.dataset")
    return None


def _fine_tuner(spec: CompressionJobSpec, original: nn.Module, adapter: Adapter, steps: int) -> Any:
    """Training on the evaluation set's train split: on its labels when it has them,
    else toward the original model's outputs (no labels needed)."""
    if spec.evaluation is None:
        raise PermanentError(
            "InvalidSpec", "spec.prune.fineTuneSteps: fine-tuning needs spec.evaluation.dataset"
        )
    data = _dataset(_train_split(spec.evaluation.dataset, None), adapter, "evaluation.dataset")
    if isinstance(data, TensorData) and data.labels is not None:
        loss = label_loss(data.labels)
    else:
        loss = match_loss(adapter.predict(original, data))

    def fine_tune(model: nn.Module) -> None:
        train(model, adapter, data, loss, steps=steps, learning_rate=FINE_TUNE_LEARNING_RATE)

    return fine_tune


def _distill(spec: CompressionJobSpec, teacher: Source, adapter: Adapter) -> Compressed:
    settings = spec.distill
    assert settings is not None
    if settings.student is not None:
        student_source = open_source(settings.student)
        student, transforms = student_source.model, []
    else:
        assert settings.student_rule is not None
        student, transforms = distillation.derive_student(teacher.model, settings.student_rule)
        student_source = teacher
    data = _dataset(settings.dataset, adapter, "distill.dataset")
    classifier = (
        spec.evaluation.metric == "accuracy"
        if spec.evaluation is not None
        else isinstance(data, TensorData) and data.labels is not None
    )
    distillation.distill(teacher.model, student, settings, adapter, data, classifier)
    details = {
        "student": "given" if settings.student is not None else "derived",
        "teacherParameters": sum(p.numel() for p in teacher.model.parameters()),
        "studentParameters": sum(p.numel() for p in student.parameters()),
        "transferSamples": len(data),
        "labelledSamples": distillation.labelled_count(data),
    }
    return Compressed(student, student_source, transforms, details)


# -- data and measurements ----------------------------------------------------------------


def _adapter(source: Source) -> Adapter:
    if source.tokenizer_dir is not None:
        return TextAdapter(source.tokenizer_dir)
    return TensorAdapter()


def _dataset(source: DatasetSource, adapter: Adapter, field: str) -> Dataset:
    """Load a dataset the spec names at `field`; it must be what the model takes."""
    try:
        data = load_dataset(source)
    except (DatasetError, OSError) as error:
        raise PermanentError("DatasetUnavailable", f"{source.uri}: {error}") from None
    if not isinstance(data, adapter.takes):
        kind = "text" if isinstance(data, TextData) else "tensors"
        wanted = "text" if adapter.takes is TextData else "tensors"
        raise PermanentError(
            "InvalidSpec", f"spec.{field}: {source.uri} holds {kind}, but the model takes {wanted}"
        )
    return data


def _train_split(source: DatasetSource, cap: int | None) -> DatasetSource:
    samples = source.max_samples if cap is None else min(cap, source.max_samples or cap)
    return source.model_copy(update={"split": "train", "max_samples": samples})


def _latency_batch(adapter: Adapter, model: nn.Module, test: Dataset | None) -> Batch | None:
    """One evaluation batch; without evaluation data, builtin sentences for text models
    and random rows of the first layer's width for tensor models."""
    if test is not None and len(test):
        return next(adapter.batches(test, BATCH_SIZE))
    if isinstance(adapter, TextAdapter):
        sentences = _dataset(DatasetSource(uri="builtin://sentences", split="test"), adapter, "")
        return next(adapter.batches(sentences, BATCH_SIZE))
    # The first weighted layer tells the input's width only when it is a Linear (a CNN's
    # first Linear is its head): otherwise no latency is measured without data.
    first = next((m for m in model.modules() if isinstance(m, WEIGHTED)), None)
    if not isinstance(first, nn.Linear):
        return None
    return torch.randn(BATCH_SIZE, first.in_features, generator=torch.Generator().manual_seed(0))


def _measured_on(
    spec: CompressionJobSpec, test: Dataset | None, batch: Batch | None
) -> dict[str, Any]:
    """Where the figures come from: the data, the batch timed, the machine."""
    measured: dict[str, Any] = {"threads": torch.get_num_threads(), "cpu": describe_cpu()}
    if spec.evaluation is not None and test is not None:
        dataset = spec.evaluation.dataset
        measured["dataset"] = f"{dataset.uri} ({dataset.split})"[:128]
        measured["samples"] = len(test)
    if isinstance(batch, dict):
        rows, tokens = batch["input_ids"].shape[:2]
        measured["latencyBatch"] = f"{rows} x {tokens} tokens"
    elif isinstance(batch, torch.Tensor):
        measured["latencyBatch"] = " x ".join(str(size) for size in batch.shape)
    return measured


def _quality(
    model: nn.Module,
    adapter: Adapter,
    test: Dataset | None,
    metric: str | None,
    reference: torch.Tensor | None,
) -> Quality | None:
    if test is None or metric is None:
        return None
    if metric == "accuracy" and (isinstance(test, TextData) or test.labels is None):
        raise PermanentError(
            "InvalidSpec", "spec.evaluation.metric: accuracy needs a labelled dataset; use cosine"
        )
    return quality(model, adapter, test, metric, reference)


def _result(
    spec: CompressionJobSpec,
    model: nn.Module,
    before: Figures,
    after: Figures,
    measured: Quality | None,
) -> dict[str, Any]:
    """The termination message's figures (the controller copies them into status)."""
    result: dict[str, Any] = {
        "method": spec.method,
        "before": before.to_k8s(),
        "after": after.to_k8s(),
    }
    if before.bytes and after.bytes:
        result["compressionRatio"] = round(before.bytes / after.bytes, 4)
    if before.latency_ms and after.latency_ms:
        result["speedup"] = round(before.latency_ms / after.latency_ms, 4)
    if before.metric is not None and after.metric is not None:
        result["metricDrop"] = round(before.metric - after.metric, 6)
    if measured is not None and measured.min_cosine is not None:
        result["minCosine"] = round(measured.min_cosine, 6)
    per_layer = sparsity(model)[1]
    if spec.method == "prune" and len(per_layer) <= SMALL_TABLE:
        result["perLayerSparsity"] = per_layer
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
