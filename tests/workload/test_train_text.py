"""TrainingJob with a task: MiniLM fine-tuned on files of text by 2 "pods", evaluated
after every epoch, resumed bit-exactly, and served for its task; gradient accumulation
and the early stop on tensor data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.workload.training import digits_file, initial_model, launch, training_spec
from torchyard.api.modelversion import ArtifactSpec
from torchyard.api.training import TrainingDataset
from torchyard.storage import compute_digest, local_path
from torchyard.workloads.records import open_records, write_records
from torchyard.workloads.serve.runner import load_runner

TRAIN, HELD_OUT = 96, 64
MINILM = {"uri": "builtin://all-minilm-l6-v2", "format": "huggingface"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """builtin://reviews as a user would have it: training records in JSON Lines, the
    held-out set in CSV."""
    root = tmp_path_factory.mktemp("reviews")
    train = open_records(TrainingDataset(uri="builtin://reviews", max_samples=TRAIN))
    test = open_records(
        TrainingDataset(uri="builtin://reviews", split="test", max_samples=HELD_OUT)
    )
    write_records(root / "train.jsonl", train, "jsonl")
    write_records(root / "test.csv", test, "csv")
    return {"train": f"file://{root}/train.jsonl", "test": f"file://{root}/test.csv"}


def text_spec(root: Path, files: dict[str, str], task: dict[str, Any], **hp: Any) -> dict:
    return {
        "parallelism": {"mode": "data", "replicas": 2},
        "model": MINILM,
        "task": task,
        "dataset": {"uri": files["train"]},
        "evaluation": {"dataset": {"uri": files["test"]}, "batchSize": 16},
        "hyperparameters": {
            "epochs": 2,
            "globalBatchSize": 16,
            "learningRate": 5e-5,
            "seed": 1,
            **hp,
        },
        "checkpoint": {"uri": f"file://{root}/checkpoints", "intervalSteps": 4},
        "output": {"uri": f"file://{root}/model"},
    }


def served(uri: str) -> Any:
    path = local_path(uri)
    return load_runner(path, ArtifactSpec(uri=uri, format="torchyard", digest=compute_digest(path)))


def test_two_pods_fine_tune_minilm_on_files_and_the_artifact_serves_its_classes(tmp_path, files):
    spec = text_spec(tmp_path, files, {"type": "classification"}, gradientAccumulationSteps=2)
    spec["dataset"]["loaderWorkers"] = 1  # read and tokenized in a forked worker
    run = launch(spec, tmp_path, timeout=600)
    assert run.returncodes == [0, 0], "\n".join(run.logs)
    result = run.termination()
    evaluation = result["evaluation"]
    assert evaluation["metric"] == "accuracy" and evaluation["stoppedEarly"] is False
    assert [e["epoch"] for e in evaluation["history"]] == [1, 2]
    assert [e["step"] for e in evaluation["history"]] == [TRAIN // 16, 2 * TRAIN // 16]
    last = evaluation["history"][-1]["metrics"]
    assert set(last) == {"accuracy", "loss"} and last["loss"] > 0
    # Live progress carried the same figures while the job ran.
    assert run.progress()["evaluation"]["history"] == evaluation["history"]

    manifest = run.manifest()
    assert manifest["transforms"][-1] == {
        "name": "text_task",
        "task": "classification",
        "labels": ["negative", "positive"],
        "outputs": 2,
        "maxLength": 128,
    }
    assert manifest["training"]["gradientAccumulationSteps"] == 2
    assert manifest["training"]["precision"] == "fp32"

    # The served model is the one that was evaluated: its answers on the held-out file
    # score the accuracy the job reported after its last epoch.
    runner = served(spec["output"]["uri"])
    held_out = list(open_records(TrainingDataset(uri=files["test"])))
    answer = runner.forward({"text": [r["text"] for r in held_out]})
    assert torch.allclose(answer["probabilities"].sum(dim=-1), torch.ones(HELD_OUT))
    hits = sum(label == r["label"] for label, r in zip(answer["label"], held_out, strict=True))
    assert hits / HELD_OUT == pytest.approx(last["accuracy"], abs=1e-6)


def test_a_killed_text_job_resumes_to_the_uninterrupted_bytes(tmp_path, files):
    """The DataLoader restarts at the resumed step of the same order, dropout draws the
    same numbers, and the evaluation history is restored: the same artifact."""
    task = {"type": "classification"}
    job = {"TORCHYARD_JOB": "TrainingJob/text", "TORCHYARD_JOB_UID": "uid-text"}
    whole = launch(text_spec(tmp_path / "whole", files, task), tmp_path / "whole", env=job)
    assert whole.returncodes == [0, 0], "\n".join(whole.logs)

    root = tmp_path / "killed"
    spec = text_spec(root, files, task)
    fault = {"TORCHYARD_FAULT_AT_STEP": "9", "TORCHYARD_FAULT_RANK": "0"}  # after epoch 1
    crashed = launch(spec, root, env={**job, **fault})
    assert crashed.returncodes[0] != 0
    resumed = launch(spec, root, env={**job, **fault})
    assert resumed.returncodes == [0, 0], "\n".join(resumed.logs)
    assert resumed.termination()["resumedFromStep"] == 8
    assert resumed.termination()["evaluation"] == whole.termination()["evaluation"]
    assert compute_digest(resumed.output()) == compute_digest(whole.output())


@pytest.mark.parametrize(
    ("task", "metrics", "output"),
    [
        ({"type": "regression", "labelField": "rating"}, {"mse", "mae"}, "prediction"),
        ({"type": "embedding", "pairField": "title"}, {"accuracy", "meanCosine"}, "embedding"),
    ],
)
def test_regression_and_embedding_tasks_train_and_serve(tmp_path, files, task, metrics, output):
    spec = text_spec(tmp_path, files, task, epochs=1, learningRate=1e-4)
    spec["parallelism"]["replicas"] = 1
    run = launch(spec, tmp_path, timeout=600)
    assert run.returncodes == [0], "\n".join(run.logs)
    (epoch,) = run.termination()["evaluation"]["history"]
    assert set(epoch["metrics"]) == metrics
    answer = served(spec["output"]["uri"]).forward({"text": ["Loved it.", "Broke at once."]})
    assert set(answer) == {output}
    if output == "embedding":
        assert torch.allclose(answer[output].norm(dim=-1), torch.ones(2), atol=1e-5)
    else:
        assert answer[output].shape == (2,)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("digits")
    return initial_model(root), digits_file(root)


@pytest.mark.parametrize("mode", ["data", "gradient"])
def test_gradient_accumulation_computes_the_same_steps(tmp_path, digits, mode):
    """A rank's share of a step in 3 passes is the same step as in one (the MLP has no
    dropout): the same losses, up to the order of float sums."""
    losses = {}
    for pieces in (1, 3):
        root = tmp_path / str(pieces)
        spec = training_spec(*digits, root, mode, 2, 1, gradientAccumulationSteps=pieces)
        run = launch(spec, root)
        assert run.returncodes == [0, 0], "\n".join(run.logs)
        losses[pieces] = run.losses()
    assert losses[3] == pytest.approx(losses[1], abs=1e-5)


def test_early_stop_ends_training_when_the_metric_stops_improving(tmp_path, digits):
    spec = training_spec(*digits, tmp_path, "data", 2, 1, epochs=10, maxSteps=None)
    spec["evaluation"] = {
        "dataset": {"uri": "builtin://digits", "split": "test"},
        # No epoch can beat the first by a whole accuracy point of 1.0: stop after two.
        "earlyStopping": {"patience": 1, "minDelta": 1.0},
    }
    run = launch(spec, tmp_path)
    assert run.returncodes == [0, 0], "\n".join(run.logs)
    result = run.termination()
    steps_per_epoch = 1437 // 64
    assert result["steps"] == 2 * steps_per_epoch and result["totalSteps"] == 10 * steps_per_epoch
    evaluation = result["evaluation"]
    assert evaluation["stoppedEarly"] is True and evaluation["bestEpoch"] in (1, 2)
    assert [e["epoch"] for e in evaluation["history"]] == [1, 2]
    assert evaluation["history"][-1]["metrics"]["accuracy"] > 0.8
    # The last checkpoint is the stop's: a restart there publishes, it does not train on.
    assert (run.checkpoints() / f"step-{2 * steps_per_epoch:09d}").is_dir()


def dropout_free_minilm(root: Path) -> str:
    """MiniLM as a torchyard artifact whose config turns dropout off: runs that draw
    their random numbers differently (one process, or a pipeline of two) must then
    compute the same losses."""
    import json
    import shutil

    from torchyard.api.common import ModelSource
    from torchyard.storage import fetch
    from torchyard.workloads.artifacts import save_artifact
    from torchyard.workloads.models import load_model

    source = fetch(MINILM["uri"])
    config = root / "config"
    shutil.copytree(source, config, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    settings = json.loads((config / "config.json").read_text())
    settings.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (config / "config.json").write_text(json.dumps(settings))
    model = load_model(ModelSource.model_validate(MINILM))
    uri = f"file://{root}/minilm-no-dropout"
    save_artifact(uri, model, base={"huggingface": "base"}, base_files=config)
    return uri


def test_minilm_split_across_two_ranks_matches_one_rank(tmp_path, files):
    """parallelism.splitPoints: the encoder traced and cut before its fourth layer, one
    stage per rank, pipelined in microbatches: the same losses as one process."""
    model = {"uri": dropout_free_minilm(tmp_path), "format": "torchyard"}
    losses = {}
    for mode, replicas, split in (("data", 1, []), ("model", 2, ["encoder.layer.3"])):
        root = tmp_path / mode
        spec = text_spec(root, files, {"type": "classification", "maxLength": 48}, maxSteps=6)
        spec["model"] = model
        spec["parallelism"] = {"mode": mode, "replicas": replicas, "splitPoints": split}
        del spec["evaluation"]  # mode model trains; evaluation runs in modes data, gradient
        run = launch(spec, root, timeout=600)
        assert run.returncodes == [0] * replicas, "\n".join(run.logs)
        losses[mode] = [loss for _, loss in run.manifest()["training"]["lossHistory"]]
        if mode == "model":
            layout = run.checkpoint_manifest(4)["layout"]
            assert layout["splitPoints"] == ["encoder.layer.3"]
            holdings = run.checkpoint_manifest(4)["holdings"]
            assert [h["parameters"] > 0 for h in holdings] == [True, True]
            # The published model is whole: it serves as any fine-tuned MiniLM does.
            answer = served(spec["output"]["uri"]).forward({"text": ["Fine.", "Awful."]})
            assert answer["probabilities"].shape == (2, 2)
    assert len(losses["model"]) == 6
    assert losses["model"] == pytest.approx(losses["data"], abs=1e-4)


def test_a_model_that_is_no_sequential_splits_at_its_named_submodule(tmp_path, digits):
    """The LSTM digits classifier (an LSTM, then a head on its last output) cut before
    its head: each rank holds one part, and the losses are one process's."""
    _, data = digits
    model = {"format": "state_dict", "factory": "torchyard.workloads.models:lstm_classifier"}
    losses = {}
    for mode, replicas, split in (("data", 1, []), ("model", 2, ["head"])):
        root = tmp_path / mode
        spec = training_spec("file:///unused", data, root, mode, replicas, 1)
        spec["model"] = model
        spec["parallelism"]["splitPoints"] = split
        run = launch(spec, root)
        assert run.returncodes == [0] * replicas, "\n".join(run.logs)
        losses[mode] = run.losses()
    assert losses["model"] == pytest.approx(losses["data"], abs=1e-5)


def test_a_traced_pipeline_in_bf16_trains_like_fp32(tmp_path, digits):
    """Under bf16 autocast a stage computes in bf16, yet what it sends matches the
    buffers the fp32 trace sized (cut after a Linear, it sent bf16 into fp32 buffers:
    losses of 1e30)."""
    losses = {}
    for name, mode, replicas, split, precision in (
        ("fp32", "data", 1, [], "fp32"),
        ("bf16", "model", 2, ["2"], "bf16"),
    ):
        root = tmp_path / name
        spec = training_spec(*digits, root, mode, replicas, 1, precision=precision)
        spec["parallelism"]["splitPoints"] = split
        run = launch(spec, root)
        assert run.returncodes == [0] * replicas, "\n".join(run.logs)
        assert run.manifest()["training"]["precision"] == precision
        losses[name] = run.losses()
    assert losses["bf16"] == pytest.approx(losses["fp32"], abs=0.05)
