"""The workloads with every URI on s3 (moto_server on loopback), run as the pods run
them: a compression job reads its model and evaluation data from s3 and publishes to
s3; a two-replica training job checkpoints to s3, is killed, and resumes from there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.s3server import S3Server
from tests.workload.compression import (
    DIGITS_TEST,
    MLP,
    digits,
    digits_teacher,
    measure_in_fresh_process,
    run_as_pod,
)
from tests.workload.training import CHECKPOINT_EVERY, STEPS, digits_file, initial_model, launch
from torchyard.storage import DIGEST, compute_digest, push, read_manifest

# Killed just before this step; the latest checkpoint then is that of step 10.
FAULT_STEP = 13
LAUNCH_TIMEOUT = 300
"""Two ranks talking to S3 on 2 shared cores: about 30 s alone, several times that when
the machine is busy (120 s, the default, was seen to run out under load)."""


def download(server: S3Server, uri: str, into: Path) -> Path:
    """The objects under `uri`, fetched by the test's own client (not the code under
    test), DIGEST left out."""
    fs = server.filesystem()
    prefix = uri.removeprefix("s3://").rstrip("/")
    for key in fs.find(prefix):
        name = key[len(prefix) + 1 :]
        if name != DIGEST:
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(key, str(into / name))
    return into


def stored_digest(server: S3Server, uri: str) -> str:
    key = uri.removeprefix("s3://").rstrip("/") + f"/{DIGEST}"
    return str(server.filesystem().cat_file(key).decode().strip())


def test_compression_reads_from_and_publishes_to_s3(s3_env: S3Server, tmp_path: Path):
    model_uri = s3_env.uri("teachers/mlp.safetensors")
    push(digits_teacher(), model_uri)
    test_split = tmp_path / "digits-test.safetensors"
    digits("test").save(test_split)
    data_uri = s3_env.uri("data/digits-test.safetensors")
    push(test_split, data_uri)
    output = s3_env.uri("compressed/mlp-int8")
    spec = {
        "model": {"uri": model_uri, "format": "safetensors", "factory": MLP},
        "method": "quantize",
        "quantize": {"mode": "dynamic"},
        "evaluation": {"dataset": {"uri": data_uri}, "maxDrop": 0.02},
        "output": {"uri": output},
        "storage": {"s3": {"endpoint": s3_env.endpoint, "region": s3_env.region}},
    }

    pod = run_as_pod(spec, tmp_path)

    assert pod.returncode == 0, pod.log[-3000:]
    artifact = pod.result["artifact"]
    assert artifact["uri"] == output
    # The digest in the result is the one the store holds, and the content adds up to it.
    assert artifact["digest"] == stored_digest(s3_env, output)
    local = download(s3_env, output, tmp_path / "downloaded")
    assert compute_digest(local) == artifact["digest"]
    assert read_manifest(local)["source"]["uri"] == model_uri
    (measured,) = measure_in_fresh_process(
        {"artifact": str(local), "dataset": DIGITS_TEST, "metric": "accuracy"}
    )
    assert measured["metric"] == pytest.approx(pod.result["after"]["metric"], abs=1e-6)
    assert pod.result["before"]["metric"] > 0.9
    assert s3_env.secret_key not in pod.log


def _spec(model: str, dataset: str, checkpoints: str, output: str) -> dict[str, Any]:
    return {
        "parallelism": {"mode": "data", "replicas": 2, "procsPerReplica": 1},
        "model": {"uri": model, "format": "torchyard"},
        "dataset": {"uri": dataset},
        "hyperparameters": {
            "maxSteps": STEPS,
            "globalBatchSize": 64,
            "learningRate": 0.01,
            "optimizer": "adamw",
            "seed": 1,
        },
        "checkpoint": {"uri": checkpoints, "intervalSteps": CHECKPOINT_EVERY},
        "output": {"uri": output},
    }


def _losses(manifest: dict[str, Any]) -> list[float]:
    history = manifest["training"]["lossHistory"]
    assert [step for step, _ in history] == list(range(1, STEPS + 1))
    return [loss for _, loss in history]


def _committed_steps(server: S3Server, uri: str) -> list[int]:
    prefix = uri.removeprefix("s3://").rstrip("/")
    keys = server.filesystem().find(prefix)
    return sorted(int(k.split("/")[-2].removeprefix("step-")) for k in keys if k.endswith(".json"))


def test_training_checkpoints_to_s3_and_resumes_after_a_killed_replica(
    s3_env: S3Server, tmp_path: Path
):
    local_model, local_data = initial_model(tmp_path), digits_file(tmp_path)
    model_uri, data_uri = s3_env.uri("initial/mlp"), s3_env.uri("data/digits.pt")
    push(Path(local_model.removeprefix("file://")), model_uri)
    push(Path(local_data.removeprefix("file://")), data_uri)
    # The reference: the same job on local storage, never interrupted.
    reference_root = tmp_path / "reference"
    reference = launch(
        _spec(
            model_uri,
            data_uri,
            f"file://{reference_root}/checkpoints",
            f"file://{reference_root}/model",
        ),
        reference_root,
        timeout=LAUNCH_TIMEOUT,
    )
    assert reference.returncodes == [0, 0], "\n".join(reference.logs)
    checkpoints, output = s3_env.uri("jobs/ddp/checkpoints"), s3_env.uri("jobs/ddp/model")
    spec = _spec(model_uri, data_uri, checkpoints, output)
    root = tmp_path / "s3"

    crashed = launch(
        spec, root, env={"TORCHYARD_FAULT_AT_STEP": str(FAULT_STEP)}, timeout=LAUNCH_TIMEOUT
    )

    assert crashed.returncodes != [0, 0], "\n".join(crashed.logs)
    latest = (FAULT_STEP // CHECKPOINT_EVERY) * CHECKPOINT_EVERY
    assert _committed_steps(s3_env, checkpoints) == [latest - CHECKPOINT_EVERY, latest]

    # The gang restart: the same pods again (the fault fires only in a fresh start).
    resumed = launch(
        spec, root, env={"TORCHYARD_FAULT_AT_STEP": str(FAULT_STEP)}, timeout=LAUNCH_TIMEOUT
    )

    assert resumed.returncodes == [0, 0], "\n".join(resumed.logs)
    result = resumed.termination()
    assert result["resumedFromStep"] == latest
    assert f"resumed from the checkpoint of step {latest}" in resumed.logs[0]
    assert result["artifact"]["digest"] == stored_digest(s3_env, output)
    trained = download(s3_env, output, tmp_path / "trained")
    assert compute_digest(trained) == result["artifact"]["digest"]
    # What was restored from s3 continues exactly as the run that never stopped.
    reference_manifest = read_manifest(reference_root / "model")
    assert _losses(read_manifest(trained)) == pytest.approx(_losses(reference_manifest), abs=1e-6)
    from safetensors.torch import load_file

    ours = load_file(str(trained / "weights.safetensors"))
    theirs = load_file(str(reference_root / "model" / "weights.safetensors"))
    for name, weight in theirs.items():
        torch.testing.assert_close(ours[name], weight, atol=1e-6, rtol=0)
    # The two newest checkpoints are kept, on s3 as on a volume.
    assert _committed_steps(s3_env, checkpoints) == [STEPS - CHECKPOINT_EVERY, STEPS]
    assert s3_env.secret_key not in "".join(resumed.logs + crashed.logs)
    assert json.dumps(result).find(s3_env.access_key) == -1
