"""Objects shared by the unit and cluster tests: the samples, and a table of invalid ones.

Every invalid object is rejected twice: by the API server (schema + CEL) in the cluster
tests and by the pydantic models in the unit tests; both messages must name the field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "manifests" / "samples"


SAMPLE_FILES = {
    "CompressionJob": "minilm-int8.yaml",
    "TrainingJob": "digits-train.yaml",
    "ModelVersion": "minilm-v1.yaml",
}
"""The sample each kind's tests start from (manifests/samples holds two CompressionJobs)."""


def sample(kind: str) -> dict[str, Any]:
    """A fresh copy of the sample object of a kind, from manifests/samples."""
    document = yaml.safe_load((SAMPLES / SAMPLE_FILES[kind]).read_text())
    if document.get("kind") != kind:
        raise LookupError(f"{SAMPLE_FILES[kind]} holds a {document.get('kind')}, not a {kind}")
    return copy.deepcopy(document)


@dataclass(frozen=True)
class Invalid:
    id: str
    kind: str
    change: Callable[[dict[str, Any]], None]
    field: str
    """The field path both error messages must name."""
    server_only: bool = False
    """A rule only the API server checks (object names: the spec models never see them)."""
    name: str | None = None

    def build(self) -> dict[str, Any]:
        obj = sample(self.kind)
        obj["metadata"] = {"name": self.name or f"bad-{self.id}"}
        self.change(obj["spec"])
        return obj


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()


def _prune_method(spec: dict[str, Any]) -> None:
    spec["method"] = "prune"


def _static_without_calibration(spec: dict[str, Any]) -> None:
    spec["quantize"] = {"mode": "static"}


def _distill_both_students(spec: dict[str, Any]) -> None:
    spec["method"] = "distill"
    del spec["quantize"]
    spec["distill"] = {
        "student": {"uri": "file:///models/small", "format": "torchscript"},
        "studentRule": {"layerFraction": 0.5},
        "dataset": {"uri": "builtin://sentences"},
    }


def _prune_sparsity(value: float) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec["method"] = "prune"
        del spec["quantize"]
        spec["prune"] = {"sparsity": value}

    return change


def _both_blocks(spec: dict[str, Any]) -> None:
    spec["prune"] = {"sparsity": 0.5}


def _model_mode_one_rank(spec: dict[str, Any]) -> None:
    spec["parallelism"] = {"mode": "model", "replicas": 1, "procsPerReplica": 1}


def _step_with_both(spec: dict[str, Any]) -> None:
    spec["rollout"] = {"steps": [{"setWeight": 20, "pause": {"durationSeconds": 5}}]}


def _output_is_input(spec: dict[str, Any]) -> None:
    spec["model"] = {"uri": "pvc://models/all-minilm-l6-v2", "format": "huggingface"}
    spec["output"] = {"uri": "pvc://models/all-minilm-l6-v2"}


def _weight_over_100(spec: dict[str, Any]) -> None:
    spec["rollout"] = {"steps": [{"setWeight": 150}]}


def _watch_too_short(spec: dict[str, Any]) -> None:
    analysis = {"intervalSeconds": 30, "failureLimit": 2, "afterPromotionSeconds": 45}
    spec["rollout"] = {"steps": [{"setWeight": 100}], "analysis": analysis}


def _quality(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """A valid quality analysis (agreement on two digits rows) with `changes` made."""

    def change(spec: dict[str, Any]) -> None:
        quality = {
            "metric": "agreement",
            "minScore": 0.9,
            "inputs": [
                {"name": "input-0", "datatype": "FP32", "shape": [2, 2], "data": [0, 1, 2, 3]}
            ],
        } | changes
        spec["rollout"] = {"analysis": {"quality": quality}}

    return change


def _tensor(**changes: Any) -> dict[str, Any]:
    return {"name": "input-0", "datatype": "FP32", "shape": [2, 2], "data": [0, 1, 2, 3]} | changes


def _promote_and_rollback(spec: dict[str, Any]) -> None:
    spec["promote"] = True
    spec["rollback"] = True


INVALID: tuple[Invalid, ...] = (
    Invalid("method-enum", "CompressionJob", _set("method", "shrink"), "spec.method"),
    Invalid("output-missing", "CompressionJob", _set("output", _DELETE), "spec.output"),
    Invalid("sparsity-range", "CompressionJob", _prune_sparsity(1.5), "spec.prune.sparsity"),
    Invalid("sparsity-zero", "CompressionJob", _prune_sparsity(0.0), "spec.prune.sparsity"),
    Invalid("uri-scheme", "CompressionJob", _set("model.uri", "http://hub/m"), "spec.model.uri"),
    Invalid("method-block-missing", "CompressionJob", _prune_method, "spec.prune"),
    Invalid("method-block-extra", "CompressionJob", _both_blocks, "spec.prune"),
    Invalid(
        "factory-missing",
        "CompressionJob",
        _set("model.format", "state_dict"),
        "spec.model.factory",
    ),
    Invalid(
        "static-calibration",
        "CompressionJob",
        _static_without_calibration,
        "spec.quantize.calibration",
    ),
    Invalid("two-students", "CompressionJob", _distill_both_students, "spec.distill"),
    Invalid(
        "search-mode",
        "CompressionJob",
        _set("quantize", {"mode": "weight_only", "search": {}}),
        "spec.quantize.search",
    ),
    Invalid("search-gate", "CompressionJob", _set("evaluation", _DELETE), "spec.evaluation"),
    Invalid(
        "search-held-out",
        "CompressionJob",
        _set("evaluation.dataset.split", "all"),
        "spec.quantize.calibration",
    ),
    Invalid(
        "search-trials",
        "CompressionJob",
        _set("quantize.search", {"maxTrials": 0}),
        "spec.quantize.search.maxTrials",
    ),
    Invalid(
        "min-cosine-metric",
        "CompressionJob",
        _set("evaluation.metric", "accuracy"),
        "spec.evaluation.minCosine",
    ),
    Invalid(
        "output-is-input",
        "CompressionJob",
        _output_is_input,
        "spec.output.uri",
    ),
    Invalid(
        "max-drop-negative",
        "CompressionJob",
        _set("evaluation.maxDrop", -0.1),
        "spec.evaluation.maxDrop",
    ),
    Invalid("backoff-negative", "CompressionJob", _set("backoffLimit", -1), "spec.backoffLimit"),
    Invalid(
        "replicas-zero", "TrainingJob", _set("parallelism.replicas", 0), "spec.parallelism.replicas"
    ),
    Invalid(
        "mode-enum", "TrainingJob", _set("parallelism.mode", "pipeline"), "spec.parallelism.mode"
    ),
    Invalid("model-one-rank", "TrainingJob", _model_mode_one_rank, "spec.parallelism.replicas"),
    Invalid(
        "reserved-env", "TrainingJob", _set("env", [{"name": "RANK", "value": "3"}]), "spec.env"
    ),
    Invalid(
        "allowed-factories-env",  # the administrator's list is not a tenant's to widen
        "TrainingJob",
        _set("env", [{"name": "TORCHYARD_ALLOWED_FACTORIES", "value": "os:*"}]),
        "spec.env",
    ),
    Invalid(
        "dataset-unknown",
        "TrainingJob",
        _set("dataset.uri", "builtin://imagenet"),
        "spec.dataset.uri",
    ),
    Invalid("model-missing", "TrainingJob", _set("model", _DELETE), "spec.model"),
    Invalid(
        "model-uri-missing",
        "TrainingJob",
        _set("model", {"format": "huggingface"}),
        "spec.model.uri",
    ),
    Invalid(
        "builtin-model-unknown",
        "CompressionJob",
        _set("model.uri", "builtin://resnet50"),
        "spec.model.uri",
    ),
    Invalid(
        "output-builtin",
        "CompressionJob",
        _set("output.uri", "builtin://all-minilm-l6-v2"),
        "spec.output.uri",
    ),
    Invalid(
        "registered-rollout-step-both",
        "TrainingJob",
        _set(
            "registerAs.rollout",
            {"steps": [{"setWeight": 20, "pause": {"durationSeconds": 5}}]},
        ),
        "spec.registerAs.rollout.steps[0]",
    ),
    Invalid(
        "batch-zero",
        "TrainingJob",
        _set("hyperparameters.globalBatchSize", 0),
        "spec.hyperparameters.globalBatchSize",
    ),
    Invalid(
        "digest-format", "ModelVersion", _set("artifact.digest", "md5:abc"), "spec.artifact.digest"
    ),
    Invalid("step-both", "ModelVersion", _step_with_both, "spec.rollout.steps[0]"),
    Invalid(
        "weight-range",
        "ModelVersion",
        _weight_over_100,
        "spec.rollout.steps[0].setWeight",
    ),
    Invalid("promote-and-rollback", "ModelVersion", _promote_and_rollback, "spec.rollback"),
    Invalid(
        "watch-too-short",
        "ModelVersion",
        _watch_too_short,
        "spec.rollout.analysis",
    ),
    Invalid(
        "sticky-header-name",
        "ModelVersion",
        _set("rollout.stickyHeader", "X Session"),
        "spec.rollout.stickyHeader",
    ),
    Invalid(
        "sticky-header-shared",
        "ModelVersion",
        _set("rollout.stickyHeader", "User-Agent"),
        "spec.rollout.stickyHeader",
    ),
    Invalid(
        "sticky-header-binary",
        "ModelVersion",
        _set("rollout.stickyHeader", "x-session-bin"),
        "spec.rollout.stickyHeader",
    ),
    Invalid("version-format", "ModelVersion", _set("version", "latest"), "spec.version"),
    Invalid(
        "quality-labels-without-accuracy",
        "ModelVersion",
        _quality(labels=[0, 1]),
        "spec.rollout.analysis.quality.labels",
    ),
    Invalid(
        "quality-accuracy-without-labels",
        "ModelVersion",
        _quality(metric="accuracy"),
        "spec.rollout.analysis.quality.labels",
    ),
    Invalid(
        "quality-a-label-per-row",
        "ModelVersion",
        _quality(metric="accuracy", labels=[0, 1, 1]),
        "spec.rollout.analysis.quality.labels",
    ),
    Invalid(
        "quality-data-fits-shape",
        "ModelVersion",
        _quality(inputs=[_tensor(data=[0, 1, 2])]),
        "spec.rollout.analysis.quality.inputs[0].data",
    ),
    Invalid(
        "quality-texts-fit-shape",
        "ModelVersion",
        _quality(inputs=[{"name": "text", "datatype": "BYTES", "shape": [3], "texts": ["a", "b"]}]),
        "spec.rollout.analysis.quality.inputs[0].texts",
    ),
    Invalid(
        "quality-bytes-are-texts",
        "ModelVersion",
        _quality(inputs=[_tensor(datatype="BYTES", shape=[4])]),
        "spec.rollout.analysis.quality.inputs[0]",
    ),
    Invalid(
        "quality-same-rows",
        "ModelVersion",
        _quality(inputs=[_tensor(), _tensor(name="mask", shape=[4, 1])]),
        "spec.rollout.analysis.quality.inputs",
    ),
    Invalid(
        "quality-score-range",
        "ModelVersion",
        _quality(minScore=1.5),
        "spec.rollout.analysis.quality.minScore",
    ),
    Invalid(
        "quality-shape-dimensions",
        "ModelVersion",
        _quality(inputs=[_tensor(shape=[1, 1, 1, 1, 4])]),
        "spec.rollout.analysis.quality.inputs[0].shape",
    ),
    Invalid(
        "registered-name-too-long",
        "CompressionJob",
        _set("registerAs", {"model": "m" * 45, "version": "1.2.3"}),
        "spec.registerAs.version",
    ),
    Invalid(
        "reserved-env",
        "ModelVersion",
        _set("serving.env", [{"name": "TORCHYARD_SPEC", "value": "{}"}]),
        "spec.serving.env[0].name",
    ),
    Invalid(
        "allowed-factories-env",
        "ModelVersion",
        _set("serving.env", [{"name": "TORCHYARD_ALLOWED_FACTORIES", "value": "os:*"}]),
        "spec.serving.env[0].name",
    ),
    Invalid(
        "s3-secret-name",
        "CompressionJob",
        _set("storage.s3.credentialsSecret", "S3_Credentials"),
        "spec.storage.s3.credentialsSecret",
    ),
    Invalid(
        "s3-endpoint-scheme",
        "TrainingJob",
        _set("storage.s3.endpoint", "minio.storage:9000"),
        "spec.storage.s3.endpoint",
    ),
    Invalid(
        # Keys are read from a Secret, never written into the spec.
        "s3-inline-key",
        "CompressionJob",
        _set("storage.s3.accessKeyId", "AKIAEXAMPLE"),
        "spec.storage.s3.accessKeyId",
    ),
    Invalid(
        "service-account-name",
        "ModelVersion",
        _set("serviceAccountName", "Model_Server"),
        "spec.serviceAccountName",
    ),
    Invalid(
        "env-loads-code",
        "TrainingJob",
        _set("env", [{"name": "PYTHONPATH", "value": "/tmp/mine"}]),
        "spec.env",
    ),
    Invalid(
        "serving-env-loads-code",
        "ModelVersion",
        _set("serving.env", [{"name": "LD_PRELOAD", "value": "/tmp/x.so"}]),
        "spec.serving.env[0].name",
    ),
    Invalid(
        "name-too-long",
        "TrainingJob",
        lambda spec: None,
        "metadata.name",
        server_only=True,
        name="a" * 51,
    ),
    Invalid(
        "name-starts-with-digit",
        "CompressionJob",
        lambda spec: None,
        "metadata.name",
        server_only=True,
        name="1st-try",
    ),
    Invalid(
        "unknown-field",
        "CompressionJob",
        _set("quantize.granularty", "per_tensor"),
        "spec.quantize.granularty",
        server_only=False,
    ),
)


def _changes(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        for one in changes:
            one(spec)

    return change


def _distill_from(student_uri: str, output_uri: str) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec["method"] = "distill"
        del spec["quantize"]
        spec["distill"] = {
            "student": {"uri": student_uri, "format": "torchyard"},
            "dataset": {"uri": "builtin://sentences"},
        }
        spec["output"] = {"uri": output_uri}

    return change


def _static_calibration(uri: str) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec["quantize"] = {"mode": "static", "calibration": {"uri": uri}}

    return change


_TORCHYARD_MODEL = {"uri": "pvc://models/digits/v1", "format": "torchyard"}

ADMISSION_GAPS: dict[str, tuple[Invalid, ...]] = {
    # A URI names one place, in one spelling, outside the node's system and agent state.
    "uri": (
        Invalid(
            "pvc-dotdot-output",
            "CompressionJob",
            _set("output.uri", "pvc://models/../../etc"),
            "spec.output.uri",
        ),
        Invalid(
            "pvc-dotdot-model",
            "CompressionJob",
            _set("model", {"uri": "pvc://models/../secrets", "format": "huggingface"}),
            "spec.model.uri",
        ),
        Invalid(
            "dotdot-at-end",
            "ModelVersion",
            _set("artifact.uri", "s3://models-bucket/minilm/.."),
            "spec.artifact.uri",
        ),
        Invalid(
            "dot-segment",
            "TrainingJob",
            _set("output.uri", "pvc://models/./digits/v1"),
            "spec.output.uri",
        ),
        Invalid(
            "trailing-slash",
            "ModelVersion",
            _set("artifact.uri", "pvc://models/minilm/"),
            "spec.artifact.uri",
        ),
        Invalid(
            "empty-segment",
            "TrainingJob",
            _set("checkpoint.uri", "pvc://models//digits/checkpoints"),
            "spec.checkpoint.uri",
        ),
        Invalid(
            "dataset-dotdot",
            "TrainingJob",
            _set("dataset.uri", "pvc://models/../../etc/passwd"),
            "spec.dataset.uri",
        ),
        Invalid(
            "calibration-dot",
            "CompressionJob",
            _static_calibration("file:///data/./calibration.pt"),
            "spec.quantize.calibration.uri",
        ),
        Invalid(
            "student-dotdot",
            "CompressionJob",
            _distill_from("pvc://models/../other/student", "pvc://models/student-distilled"),
            "spec.distill.student.uri",
        ),
        Invalid(
            "query-in-uri",
            "CompressionJob",
            _set("output.uri", "s3://models-bucket/minilm?versionId=1"),
            "spec.output.uri",
        ),
        Invalid(
            "file-proc",
            "CompressionJob",
            _set("model", {"uri": "file:///proc/self/environ", "format": "torchscript"}),
            "spec.model.uri",
        ),
        Invalid(
            "file-sys", "TrainingJob", _set("output.uri", "file:///sys/kernel/x"), "spec.output.uri"
        ),
        Invalid(
            "file-dev", "CompressionJob", _set("output.uri", "file:///dev/sda"), "spec.output.uri"
        ),
        Invalid(
            "file-dev-itself",
            "TrainingJob",
            _set("dataset.uri", "file:///dev"),
            "spec.dataset.uri",
        ),
        Invalid(
            "file-agent-state",
            "TrainingJob",
            _set("checkpoint.uri", "file:///root/.local/state/torchyard/local/agent/pods"),
            "spec.checkpoint.uri",
        ),
        Invalid(
            "file-control-plane-state",
            "ModelVersion",
            _set("artifact.uri", "file:///home/dev/.local/state/torchyard/local"),
            "spec.artifact.uri",
        ),
        Invalid(
            "evaluation-proc",
            "CompressionJob",
            _set("evaluation.dataset.uri", "file:///proc/1/mem"),
            "spec.evaluation.dataset.uri",
        ),
        Invalid(
            "output-is-model-with-slash",
            "CompressionJob",
            _changes(
                _set("model", {"uri": "pvc://models/minilm", "format": "huggingface"}),
                _set("output.uri", "pvc://models/minilm/"),
            ),
            "spec.output.uri",
        ),
        Invalid(
            "output-inside-model",
            "CompressionJob",
            _changes(
                _set("model", {"uri": "pvc://models/minilm", "format": "huggingface"}),
                _set("output.uri", "pvc://models/minilm/int8"),
            ),
            "spec.output.uri",
        ),
        Invalid(
            "model-inside-output",
            "CompressionJob",
            _changes(
                _set("model", {"uri": "s3://models-bucket/m/base", "format": "huggingface"}),
                _set("output.uri", "s3://models-bucket/m"),
            ),
            "spec.output.uri",
        ),
        Invalid(
            "output-is-student",
            "CompressionJob",
            _distill_from("pvc://models/student", "pvc://models/student"),
            "spec.output.uri",
        ),
        Invalid(
            "training-output-is-model",
            "TrainingJob",
            _set("model", _TORCHYARD_MODEL),
            "spec.output.uri",
        ),
        Invalid(
            "training-output-is-checkpoint",
            "TrainingJob",
            _set("checkpoint.uri", "pvc://models/digits/v1"),
            "spec.output.uri",
        ),
        Invalid(
            "checkpoint-inside-output",
            "TrainingJob",
            _set("checkpoint.uri", "pvc://models/digits/v1/checkpoints"),
            "spec.output.uri",
        ),
    ),
    # Names that become Service and ModelVersion names (DNS-1035: a letter first).
    "name": (
        Invalid("model-starts-with-digit", "ModelVersion", _set("model", "1minilm"), "spec.model"),
        Invalid(
            "registered-model-starts-with-digit",
            "TrainingJob",
            _set("registerAs.model", "9digits"),
            "spec.registerAs.model",
        ),
        Invalid(
            "registered-model-digits-only",
            "CompressionJob",
            _set("registerAs", {"model": "2024", "version": "1"}),
            "spec.registerAs.model",
        ),
    ),
    # Seconds that would overflow date arithmetic (the year 9999) in the planners.
    "seconds": (
        Invalid(
            "ttl-overflow",
            "CompressionJob",
            _set("ttlSecondsAfterFinished", 100000000000000),
            "spec.ttlSecondsAfterFinished",
        ),
        Invalid(
            "deadline-overflow",
            "TrainingJob",
            _set("activeDeadlineSeconds", 9000000000000),
            "spec.activeDeadlineSeconds",
        ),
        Invalid(
            "deadline-over-a-year",
            "CompressionJob",
            _set("activeDeadlineSeconds", 40000000),
            "spec.activeDeadlineSeconds",
        ),
        Invalid(
            "training-ttl-overflow",
            "TrainingJob",
            _set("ttlSecondsAfterFinished", 2**62),
            "spec.ttlSecondsAfterFinished",
        ),
    ),
    # Quantities that no pod can have.
    "quantity": (
        Invalid(
            "negative-cpu",
            "CompressionJob",
            _set("resources.requests.cpu", "-1"),
            "spec.resources.requests",
        ),
        Invalid(
            "negative-integer-memory",
            "TrainingJob",
            _set("resources.limits", {"memory": -5}),
            "spec.resources.limits",
        ),
        Invalid(
            "limit-below-request",
            "CompressionJob",
            _set("resources.limits.memory", "512Mi"),
            "spec.resources.limits",
        ),
        Invalid(
            "limit-below-request-other-unit",
            "ModelVersion",
            _set(
                "serving.resources", {"requests": {"memory": "1Gi"}, "limits": {"memory": "1000Mi"}}
            ),
            "spec.serving.resources.limits",
        ),
        Invalid(
            "cpu-limit-below-request",
            "TrainingJob",
            _set("resources.limits", {"cpu": "0.2"}),
            "spec.resources.limits",
        ),
        Invalid(
            "registered-negative-request",
            "CompressionJob",
            _set(
                "registerAs",
                {
                    "model": "minilm",
                    "version": "2",
                    "serving": {"resources": {"requests": {"cpu": "-500m"}}},
                },
            ),
            "spec.registerAs.serving.resources.requests",
        ),
        Invalid(
            "quantity-format",
            "ModelVersion",
            _set("serving.resources.requests.memory", "2 GB"),
            "spec.serving.resources.requests.memory",
        ),
    ),
}
"""Inputs the API server accepted before issue 14, by class (tests/cluster/
test_hostile_admission.py counts them); every one is also a row of INVALID."""

INVALID = INVALID + tuple(case for cases in ADMISSION_GAPS.values() for case in cases)

PLACEMENT_INVALID: tuple[Invalid, ...] = (
    Invalid(
        "toleration-exists-with-value",
        "TrainingJob",
        _set("tolerations", [{"key": "nvidia.com/gpu", "operator": "Exists", "value": "x"}]),
        "spec.tolerations[0].value",
    ),
    Invalid(
        "toleration-without-key",
        "CompressionJob",
        _set("tolerations", [{"effect": "NoSchedule"}]),
        "spec.tolerations[0].operator",
    ),
    Invalid(
        "toleration-seconds-without-no-execute",
        "ModelVersion",
        _set(
            "serving.tolerations",
            [{"key": "gpu", "value": "a100", "effect": "NoSchedule", "tolerationSeconds": 5}],
        ),
        "spec.serving.tolerations[0].tolerationSeconds",
    ),
    Invalid(
        "node-selector-key",
        "TrainingJob",
        _set("nodeSelector", {"gpu type": "a100"}),
        "spec.nodeSelector",
    ),
    Invalid(
        "node-selector-key-prefix",
        "TrainingJob",
        _set("nodeSelector", {"a" * 254 + "/gpu": "a100"}),
        "spec.nodeSelector",
    ),
    Invalid(
        "node-selector-value",
        "CompressionJob",
        _set("nodeSelector", {"nvidia.com/gpu.product": "A100 80GB"}),
        "spec.nodeSelector",
    ),
    Invalid(
        "priority-class-name",
        "TrainingJob",
        _set("priorityClassName", "High_Priority"),
        "spec.priorityClassName",
    ),
    Invalid("shm-size-tiny", "TrainingJob", _set("shmSize", "512Ki"), "spec.shmSize"),
    Invalid("shm-size-format", "TrainingJob", _set("shmSize", "2 GB"), "spec.shmSize"),
)
"""Pod placement (issue 17): every field a user would get wrong, refused by name."""

INVALID = INVALID + PLACEMENT_INVALID


def _text_task(task: dict[str, Any], mode: str = "data") -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec["model"] = {"uri": "builtin://all-minilm-l6-v2", "format": "huggingface"}
        spec["dataset"] = {"uri": "builtin://reviews"}
        spec["task"] = task
        spec["parallelism"] = {"mode": mode, "replicas": 2}

    return change


TASK_INVALID: tuple[Invalid, ...] = (
    Invalid(
        "embedding-without-pair",
        "TrainingJob",
        _text_task({"type": "embedding"}),
        "spec.task.pairField",
    ),
    Invalid(
        "labels-for-regression",
        "TrainingJob",
        _text_task({"type": "regression", "labelField": "rating", "labels": ["1", "5"]}),
        "spec.task.labels",
    ),
    Invalid(
        "one-label",
        "TrainingJob",
        _text_task({"type": "classification", "labels": ["positive"]}),
        "spec.task.labels",
    ),
    Invalid(
        "frozen-embedding",
        "TrainingJob",
        _text_task({"type": "embedding", "pairField": "title", "freezeEncoder": True}),
        "spec.task.freezeEncoder",
    ),
    Invalid(
        "text-task-in-model-mode-without-split-points",
        "TrainingJob",
        _text_task({"type": "classification"}, mode="model"),
        "spec.parallelism.splitPoints",
    ),
    Invalid(
        "split-points-outside-model-mode",
        "TrainingJob",
        _set("parallelism", {"mode": "data", "replicas": 2, "splitPoints": ["head"]}),
        "spec.parallelism.splitPoints",
    ),
    Invalid(
        "split-points-one-stage-per-rank",
        "TrainingJob",
        _set("parallelism", {"mode": "model", "replicas": 2, "splitPoints": ["2", "4"]}),
        "spec.parallelism.splitPoints",
    ),
    Invalid(
        "split-point-name",
        "TrainingJob",
        _set("parallelism", {"mode": "model", "replicas": 2, "splitPoints": ["layer 3"]}),
        "spec.parallelism.splitPoints[0]",
    ),
    Invalid(
        "max-length-too-long",
        "TrainingJob",
        _text_task({"type": "classification", "maxLength": 4096}),
        "spec.task.maxLength",
    ),
    Invalid(
        "format-of-a-builtin-dataset",
        "TrainingJob",
        _set("dataset.format", "csv"),
        "spec.dataset.format",
    ),
    Invalid(
        "accumulation-beyond-batch",
        "TrainingJob",
        _set("hyperparameters", {"globalBatchSize": 4, "gradientAccumulationSteps": 8}),
        "spec.hyperparameters.gradientAccumulationSteps",
    ),
    Invalid(
        "precision-enum",
        "TrainingJob",
        _set("hyperparameters.precision", "fp16"),
        "spec.hyperparameters.precision",
    ),
    Invalid(
        "early-stopping-patience",
        "TrainingJob",
        _set(
            "evaluation",
            {
                "dataset": {"uri": "builtin://digits", "split": "test"},
                "earlyStopping": {"patience": 0},
            },
        ),
        "spec.evaluation.earlyStopping.patience",
    ),
)
"""Text tasks and evaluation (issue 17): refused by name, at the API server and in code."""

INVALID = INVALID + TASK_INVALID


def contains(actual: Any, expected: Any) -> bool:
    """Everything the user wrote is stored; the API server may add defaults."""
    if isinstance(expected, dict):
        return all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(contains, actual, expected))
    return actual == expected
